"""Review requests: once an order's return window has passed, one email inviting the member to
review what they bought, linking straight to each review form."""

from __future__ import annotations

import secrets
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.models import Channel
from community.models import Review, ReviewRequest
from community.services.reviews import product_ensure
from messaging.models import Purpose
from messaging.services import Outgoing, messages_queue
from rewards.models import Order, OrderLine, OrderStatus
from rewards.program import current_program

# Orders whose window closed longer ago than this are not asked about (a first run on an old
# store must not email about last year's orders).
LOOKBACK_DAYS = 14
# Other apps narrow who is asked (feedback: no requests to a member who was just unhappy).
# Each takes (orders queryset, now) and returns a narrower one.
REQUEST_FILTERS = ["feedback.services.quiet_detractors"]


def review_requests_send(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Ask members who agreed to review requests (the "surveys and review requests" preference,
    by e-mail or SMS) about orders whose pending period has just ended and that were not refunded in
    full: one email per member per run, never twice for one order, nothing for items they have
    already reviewed. Safe to run twice or concurrently: each order is claimed by one run with
    a unique row before its message is queued (and the message leaves only if that commits).
    Returns how many messages were queued."""
    program = current_program()
    now = now or timezone.now()
    due_before = now - timedelta(days=program.settings.pending_days)
    orders = (Order.objects.filter(placed_at__lte=due_before, placed_at__gt=due_before - timedelta(days=LOOKBACK_DAYS),
                                   member__erased_at__isnull=True)
              .exclude(member__surveys_channel=Channel.NONE).exclude(status=OrderStatus.REFUNDED)
              .exclude(Exists(ReviewRequest.objects.filter(order_id=OuterRef("pk")))))
    for path in REQUEST_FILTERS:
        orders = import_string(path)(orders, now)
    order_ids = list(orders.order_by("pk").values_list("pk", flat=True))
    sent = 0
    for start in range(0, len(order_ids), batch_size):
        sent += _send_batch(order_ids[start:start + batch_size], now=now)
    return sent


def _send_batch(order_ids: list[int], *, now: datetime) -> int:
    claim = secrets.token_hex(16)
    lines = defaultdict(list)
    for order_id, member_id, sku, name in OrderLine.objects.filter(order_id__in=order_ids).exclude(
            refunded_quantity=F("quantity")).values_list("order_id", "order__member_id", "sku", "name").order_by(
            "order_id", "position"):
        lines[order_id].append((member_id, sku, name))
    with transaction.atomic():
        ReviewRequest.objects.bulk_create([
            ReviewRequest(order_id=order_id, member_id=items[0][0], skus=[sku for _, sku, _ in items], sent_at=now,
                          claim=claim)
            for order_id, items in lines.items()
        ], ignore_conflicts=True)
        mine = ReviewRequest.objects.filter(order_id__in=list(lines), claim=claim).values_list("order_id", "member_id")
        wanted = defaultdict(dict)
        for order_id, member_id in mine:
            for _, sku, name in lines[order_id]:
                wanted[member_id][sku] = name
        reviewed = set(Review.objects.filter(member_id__in=list(wanted)).values_list("member_id", "product__sku"))
        requests = dict(ReviewRequest.objects.filter(order_id__in=list(lines), claim=claim)
                        .values_list("member_id", "pk"))
        outgoing = []
        for member_id, items in wanted.items():
            todo = [(sku, name) for sku, name in items.items() if (member_id, sku) not in reviewed]
            if not todo:
                continue
            for sku, _ in todo:
                product_ensure(sku=sku)
            outgoing.append(Outgoing(
                template="review_request", purpose=Purpose.REVIEWS, member_id=member_id,
                key=f"review_request:{requests[member_id]}",
                context={"items": [{"name": name or sku, "url": reverse("community:review", args=[sku])}
                                   for sku, name in todo]}))
        messages_queue(items=outgoing, now=now)
    return len(outgoing)
