"""The storefront widgets' API through gunicorn: p50 / p95 of the launcher's ``me/`` for a member
with history, of the reviews widget's first page for a product with 1,000 published reviews and of
a listing's stars (24 products), beside /healthz in the same run; the script's size gzipped; and the
requests a product page of the demo shop makes to Loyalty Loop, counted in Chromium."""

from __future__ import annotations

import contextlib
import gzip
import random
import time
from datetime import timedelta
from pathlib import Path

CALLS = 200


def bench_embed(rows: list, Row, request, percentile, ensure_members, *, port: int) -> None:
    from django.db import connections
    from django.utils import timezone

    from accounts.services import member_upsert_for_partner, partner_create
    from community.models import ModerationStatus, Product, Review
    from community.services import product_ratings_recount
    from community.services.moderation import relevance
    from rewards.models import Reward
    from rewards.payloads import parse_order
    from rewards.services import orders_record, reward_redeem
    from storefront.services import store_embed_ensure, store_embed_secret_rotate
    from storefront.tokens import token_mint

    partner = partner_create(name="Embed Bench Store")
    embed = store_embed_ensure(partner=partner)
    secret = store_embed_secret_rotate(partner=partner)
    member, _ = member_upsert_for_partner(partner=partner, external_id="shopper", data={
        "email": "shopper@bench.example.com", "first_name": "Ada"})
    now = timezone.now()
    orders_record(partner=partner, orders=[parse_order({
        "order_id": f"E-{n}", "member": "shopper", "placed_at": (now - timedelta(days=n * 7)).isoformat(),
        "currency": "EUR", "total": "120.00",
        "lines": [{"sku": f"EMB-{n % 24}", "name": "Tea", "quantity": 1, "unit_price": "120.00"}]},
        accepted_currencies={"EUR"}) for n in range(1, 40)])
    rewards = list(Reward.objects.filter(is_active=True)[:3])
    for reward in rewards:
        with contextlib.suppress(Exception):  # not affordable: the launcher shows it as out of reach
            reward_redeem(member=member, reward=reward, partner=partner)
    member_ids = ensure_members(1_000)
    rng = random.Random(11)
    product = Product.objects.create(sku="EMBED-1K", name="Embed bench tea")
    for index in range(24):
        Product.objects.get_or_create(sku=f"EMB-{index}", defaults={"name": f"Tea {index}"})
    reviews = []
    for n in range(1_000):
        published = now - timedelta(minutes=n)
        helpful, text = rng.choice((0, 0, 1, 3)), "Fresh and fragrant, a lovely tea. " * rng.randint(1, 8)
        reviews.append(Review(product=product, member_id=member_ids[n], rating=rng.choice((5, 4, 4, 3, 2)),
                              title=f"Review {n}", text=text, status=ModerationStatus.APPROVED, published_at=published,
                              helpful_count=helpful, relevance=relevance(helpful=helpful, photos=0, text=text,
                                                                         published_at=published)))
    Review.objects.bulk_create(reviews)
    product_ratings_recount(product_ids=[product.pk])  # written here without the review services
    with connections["default"].cursor() as cursor:
        cursor.execute("ANALYZE")  # as autovacuum would have by now: the plans of a store in use
    connections.close_all()

    token = token_mint(secret=secret, external_id="shopper")
    store = {"X-Store": embed.public_key}
    shopper = {**store, "Authorization": f"Bearer {token}"}
    listing = "/embed/v1/stars/?" + "&".join(f"sku=EMB-{n}" for n in range(24))

    def timed(path: str, headers: dict | None = None) -> tuple[float, float]:
        request("GET", path, headers=headers)  # warm up
        latencies = []
        for _ in range(CALLS):
            started = time.perf_counter()
            status, _ = request("GET", path, headers=headers)
            latencies.append(time.perf_counter() - started)
            assert status == 200, (path, status)
        return percentile(latencies, 50) * 1000, percentile(latencies, 95) * 1000

    healthz = timed("/healthz")
    for label, path, headers in (("launcher, GET /embed/v1/me/ (a member with 39 orders)", "/embed/v1/me/", shopper),
                                 ("reviews widget, 1,000 reviews, first page", "/embed/v1/products/EMBED-1K/reviews/",
                                  shopper),
                                 ("stars of a listing of 24 products, one request", listing, store)):
        p50, p95 = timed(path, headers)
        rows.append(Row(f"Widget API, {label}: p50 / p95 (/healthz {healthz[0]:.1f} / {healthz[1]:.1f} ms)",
                        f"{p50:.0f} / {p95:.0f} ms", "p95 < 50 ms", p95 < 50))
    script = (Path(__file__).resolve().parent.parent / "storefront" / "static" / "storefront" / "loyalty.js")\
        .read_bytes()
    size = len(gzip.compress(script, 9))
    rows.append(Row("loyalty.js, gzipped", f"{size / 1024:.1f} KB ({len(script) / 1024:.1f} KB raw)", "< 30 KB",
                    size < 30 * 1024))
    rows.append(_requests_of_a_product_page(partner, port, Row))


def _requests_of_a_product_page(partner, port: int, Row):
    """Load the demo shop's product page (launcher, stars, reviews) in Chromium and count what it asks
    Loyalty Loop for."""
    import os

    from storefront.demo_shop import DemoShop
    from storefront.services import store_embed_origins_set

    if not os.path.exists("/usr/bin/chromium"):
        return Row("Requests of a product page to Loyalty Loop", "not measured: no /usr/bin/chromium", "")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    shop = DemoShop(partner=partner, customer="shopper", loyalty_url=f"http://127.0.0.1:{port}")
    url = shop.start()
    store_embed_origins_set(partner=partner, origins=[url])
    calls, answers = [], []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page()
            page.on("request", lambda r: calls.append(r.url) if f":{port}/" in r.url else None)
            page.on("response", lambda r: answers.append(f"{r.status} {r.url}") if f":{port}/" in r.url else None)
            page.goto(f"{url}/products/EMB-1/")
            try:
                page.locator("loyalty-reviews h2").wait_for(timeout=60_000)
                page.wait_for_load_state("networkidle")
            except PlaywrightTimeout:
                # One part not measured is a row that says why, not a table lost.
                return Row("Requests of a product page (launcher, stars, reviews) to Loyalty Loop",
                           f"not measured: the reviews widget did not render in 60 s ({'; '.join(answers)})",
                           "<= 4", False)
            finally:
                browser.close()
    finally:
        shop.stop()
    kinds = sorted({call.split("/embed/v1/")[1].split("?")[0] for call in calls})
    return Row("Requests of a product page (launcher, stars, reviews) to Loyalty Loop",
               f"{len(calls)}: {', '.join(kinds)}", "<= 4", len(calls) <= 4)
