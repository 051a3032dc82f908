"""``Idempotency-Key`` for partner writes.

The first request with a key runs and its answer is stored in the same transaction as its
effects. A retry with the same key and the same body gets that answer again (header
``Idempotent-Replayed: true``); the same key with another body or path is refused with 422.
Concurrent requests with one key queue on the key's unique index: the second waits for the
first to commit, then replays it. Answers that are errors are not stored, so a corrected retry
may reuse the key. Keys are kept for 7 days (``accounts.tasks.purge_idempotency_keys``).
"""

import hashlib
import json
from functools import wraps

from django.db import IntegrityError, transaction
from rest_framework.response import Response

from accounts.models import IdempotencyRecord
from loyalty_site.errors import Invalid, Unprocessable

HEADER = "Idempotency-Key"


def _request_hash(request) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def idempotent(handler):
    @wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        key = key.strip()
        if not key or len(key) > 255:
            raise Invalid("Idempotency-Key must be 1 to 255 characters.",
                          fields={HEADER: "Must be 1 to 255 characters."})
        digest = _request_hash(request)
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        partner=request.user, key=key, method=request.method, path=request.path[:255],
                        request_hash=digest,
                    )
            except IntegrityError:
                return _replay(request, key, digest)
            response = handler(view, request, *args, **kwargs)
            if response.status_code < 400:
                record.status_code = response.status_code
                record.response_body = response.data
                record.save(update_fields=["status_code", "response_body"])
            else:
                record.delete()
            return response

    return wrapper


def _replay(request, key: str, digest: str) -> Response:
    record = IdempotencyRecord.objects.get(partner=request.user, key=key)
    if record.request_hash != digest:
        raise Unprocessable(
            "This Idempotency-Key was used for a different request.",
            code="idempotency_key_reused",
            fields={HEADER: "Already used with a different body or path."},
        )
    response = Response(record.response_body, status=record.status_code)
    response["Idempotent-Replayed"] = "true"
    return response
