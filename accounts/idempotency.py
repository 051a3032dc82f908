"""``Idempotency-Key`` for partner writes.

The first request with a key runs and its answer is stored with its effects: by one INSERT at
the end of a transaction around the request, or, for a single order, inside the order's own write
(``core.bulk.Carry``: in its one statement, with no transaction around it). A retry with the same
key and the same body gets that answer again (header ``Idempotent-Replayed: true``); the same key
with another body or path is refused with 422. Concurrent requests with one key meet on the key's
unique index: the second, storing its answer, waits for the first to commit, finds the key taken,
is rolled back whole and replays the first's answer (a retry that fails where the first succeeded,
its points spent, replays it too). Answers that are errors are not stored, so a corrected retry
may reuse the key. Keys are kept for 7 days (``accounts.tasks.purge_idempotency_keys``).
"""

import hashlib
import json
import re
from functools import wraps

from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.utils import encoders

from accounts.models import IdempotencyRecord
from accounts.schema import ErrorSerializer
from core import bulk
from core.errors import DomainError, Invalid, Unprocessable
from core.secrets import secret_decrypt, secret_encrypt

HEADER = "Idempotency-Key"
# For the schema of every write.
KEY_PATTERN = r"^[!-~]{1,255}$"  # printable ASCII without spaces: a UUID, a hash, an order number
_KEY = re.compile(KEY_PATTERN)
IDEMPOTENCY = OpenApiParameter(
    HEADER, {"type": "string", "pattern": KEY_PATTERN, "minLength": 1, "maxLength": 255}, OpenApiParameter.HEADER,
    required=False,
    description="Any unique string (a UUID), 1 to 255 printable ASCII characters without spaces. A retry "
    "with the same key and body returns the first answer (with `Idempotent-Replayed: true`); the same key "
    "with another body gets 422 `idempotency_key_reused`.",
)
REPLAY_422 = {422: OpenApiResponse(
    ErrorSerializer, description="`idempotency_key_reused`: the Idempotency-Key was used with another body.")}
TABLE = IdempotencyRecord._meta.db_table


def _request_hash(request) -> str:
    # The raw bytes: a retry sends exactly what it sent the first time.
    return hashlib.sha256(f"{request.method} {request.path}\n".encode() + request.body).hexdigest()


def idempotent(handler=None, *, secret_fields: tuple[str, ...] = (), scope=None, answer=None):
    """Make a partner write replayable by its ``Idempotency-Key``. ``secret_fields`` name fields of
    the answer that hold a secret shown once (a rotated signing secret): they are kept encrypted
    (``core.secrets``) in the stored answer, so a database dump does not reveal them. ``scope(request)``
    gives the keys of one caller of the partner a namespace of their own (each shopper of a store's
    widgets): another caller's key is then never theirs to replay or to take.

    ``answer(outcome)`` gives ``(status, data)`` for the outcome of the handler's one service call,
    as the handler answers it: the service then carries the record in its own write
    (``core.bulk.Carry``: one order's one statement, no transaction around it) instead of the
    handler running in a transaction that ends with the record. Only for a handler whose every
    write is that one service call's, and whose service carries the record in every write it makes."""
    if handler is None:
        return lambda function: _idempotent(function, secret_fields, scope, answer)
    return _idempotent(handler, secret_fields, scope, answer)


FIELDS = ("partner_id", "key", "method", "path", "request_hash", "status_code", "response_body", "created_at")


def _idempotent(handler, secret_fields: tuple[str, ...], scope, answer):
    @wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        if not _KEY.match(key):
            raise Invalid("Idempotency-Key must be 1 to 255 printable ASCII characters without spaces.",
                          fields={HEADER: "Must be 1 to 255 printable ASCII characters without spaces."})
        if scope is not None:
            key = f"{scope(request)} {key}"  # a space: no key sent can contain one
            if len(key) > 255:
                raise Invalid("Idempotency-Key is too long.", fields={HEADER: "At most 200 characters here."})
        digest = _request_hash(request)

        def record(status_code: int, data) -> tuple:
            # As the answer is rendered (microseconds kept): a replay is the same bytes of JSON.
            return (request.user.pk, key, request.method, request.path[:255], digest, status_code,
                    json.dumps(_sealed(data, secret_fields), cls=encoders.JSONEncoder), timezone.now())

        # The request runs first and its answer is stored last, with its effects: one statement
        # for the key, not two. A key already taken (a retry of a finished request, or a request
        # still running, whose insert we waited for on the unique index) undoes all this request
        # did, and it answers as the first did.
        try:
            if answer is not None:
                carry = bulk.Carry(IdempotencyRecord, FIELDS, lambda outcome: record(*answer(outcome)),
                                   unique=("partner_id", "key"))
                with bulk.carrying(carry):
                    response = handler(view, request, *args, **kwargs)
                if not carry.done and response.status_code < 400:
                    _store(record(response.status_code, response.data))  # it wrote nothing (a duplicate)
                return response
            with transaction.atomic():
                response = handler(view, request, *args, **kwargs)
                if response.status_code >= 400:
                    return response  # not kept: a corrected retry may use the key again
                _store(record(response.status_code, response.data))
                return response
        except bulk.Carry.Taken:
            return _replay(request, key, digest, secret_fields)
        except (DomainError, APIException):
            # A retry may fail where the first succeeded (its points are spent now): the first
            # answer stands.
            if IdempotencyRecord.objects.filter(partner_id=request.user.pk, key=key).exists():
                return _replay(request, key, digest, secret_fields)
            raise

    return wrapper


def _store(row: tuple) -> None:
    """Insert the record in the caller's transaction; a key taken by another request undoes it."""
    if not bulk.insert_new(IdempotencyRecord, FIELDS, [row], unique=("partner_id", "key")):
        raise bulk.Carry.Taken


def _sealed(data, fields: tuple[str, ...]):
    if not fields or not isinstance(data, dict):
        return data
    return {name: {"encrypted": secret_encrypt(value)} if name in fields else value for name, value in data.items()}


def _unsealed(data, fields: tuple[str, ...]):
    if not fields or not isinstance(data, dict):
        return data
    # Answers stored before secrets were sealed hold them as plain strings (for the 7 days keys live).
    return {name: secret_decrypt(value["encrypted"]) if name in fields and isinstance(value, dict) else value
            for name, value in data.items()}


def _replay(request, key: str, digest: str, secret_fields: tuple[str, ...] = ()) -> Response:
    record = IdempotencyRecord.objects.get(partner=request.user, key=key)
    if record.request_hash != digest:
        raise Unprocessable(
            "This Idempotency-Key was used for a different request.",
            code="idempotency_key_reused",
            fields={HEADER: "Already used with a different body or path."},
        )
    response = Response(_unsealed(record.response_body, secret_fields), status=record.status_code)
    response["Idempotent-Replayed"] = "true"
    return response
