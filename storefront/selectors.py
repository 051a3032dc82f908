"""Reads of the storefront widgets: which store a public key names, which shop origins may call,
and what the launcher, the stars and the reviews widget show."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from accounts.models import Member, Partner
from community.models import CommunitySettings, HelpfulVote, Product, Review
from community.selectors import bought, rating_summaries
from core.process_cache import ProcessCopy
from recommendations.selectors import recommendations_for_member
from rewards.member_data import member_api_points, member_api_progress
from rewards.models import OrderLine
from rewards.program import current_program
from rewards.selectors import catalog, coupons, recent_entries, told_to_partner, ways_to_earn
from storefront.models import StoreEmbed
from storefront.origins import origin_of

EMBED_PATHS = "/embed/v1/"


class _Stores:
    """Every store's embed by public key (with its partner), and every registered origin."""

    def __init__(self):
        self.by_key = {embed.public_key: embed for embed in StoreEmbed.objects.select_related("partner")}
        self.origins = frozenset(origin for embed in self.by_key.values() for origin in embed.origins)


# Kept by each process until a store's embed changes (storefront.services) or a partner is paused
# or resumed (which moves the API keys' version): a widget call reads no store from the database.
stores = ProcessCopy("embed-stores", _Stores, follows=("api-keys",))


def store_for_key(public_key: str) -> StoreEmbed | None:
    return stores.get().by_key.get(public_key) if public_key else None


def token_secrets(embed: StoreEmbed, *, now=None) -> list[str]:
    """The secrets a customer token of this store may be signed with: the current one, and the
    previous one for a day after a rotation."""
    now = now or timezone.now()
    current, previous = embed.plain_secrets
    found = [current] if current else []
    if previous and embed.previous_secret_until and embed.previous_secret_until > now:
        found.append(previous)
    return found


def cors_allows(sender, request, **kwargs) -> bool:
    """django-cors-headers asks whether to answer a cross-origin request, for the widget API only: a
    preflight (which names no store) from an origin some store registered; a request from an origin
    of the store its ``X-Store`` names."""
    origin = request.headers.get("Origin", "")
    if not origin or not request.path.startswith(EMBED_PATHS):
        return False
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        return origin in stores.get().origins
    embed = store_for_key(request.headers.get("X-Store", ""))
    return embed is not None and origin in embed.origins


# --- What the launcher shows ---------------------------------------------------------------------

def _portal(path: str) -> str:
    return settings.SITE_URL + path


def program_public(*, with_rewards: bool = True) -> dict:
    """What anyone sees in the launcher: the program, how to earn, what there is to get, how to join
    (the rewards left out where the member's own list replaces them)."""
    brand = current_program().brand
    return {
        "program": {"name": brand.name, "logo_url": brand.logo_url, "colour": brand.colour,
                    "accent": brand.accent, "portal_url": _portal("/"),
                    "join_url": _portal(reverse("account_signup")), "login_url": _portal(reverse("account_login")),
                    "earn_url": _portal(reverse("rewards:earn"))},
        "ways_to_earn": [{"headline": way.headline, "conditions": way.conditions} for way in ways_to_earn()],
        "rewards": [_reward(item) for item in catalog(member=None)] if with_rewards else [],
    }


def _reward(item, *, member: bool = False) -> dict:
    reward = item.reward
    data = {"id": reward.pk, "name": reward.name, "description": reward.description, "kind": reward.kind,
            "points_cost": reward.points_cost}
    if member:
        data.update(redeemable=item.redeemable, points_short=item.points_short,
                    progress_percent=item.progress_percent, blocked=item.blocked or "")
    return data


def member_view(*, member: Member, partner: Partner, external_id: str) -> dict:
    """The launcher of a signed-in customer (``GET /embed/v1/me/``): the partner API's points and
    tier, the reward they are closest to, what they can redeem, their coupons and recent activity,
    their referral link."""
    items = catalog(member=member)
    within = [item for item in items if item.blocked is None]
    next_reward = next((item for item in within if not item.affordable), None)
    data = {
        "member": {"external_id": external_id, "first_name": member.first_name},
        **member_api_points(member=member, partner=partner),
        **{"tier": member_api_progress(member=member, partner=partner)["tier"]},
        "next_reward": _reward(next_reward, member=True) if next_reward else None,
        "rewards": [_reward(item, member=True) for item in within],
        "coupons": [{"code": c.code, "reward": c.reward.name, "expires_at": c.expires_at.isoformat(),
                     "used": c.used_at is not None} for c in coupons(member=member)[:5]],
        "recent": [{"at": e.effective_at.isoformat(), "points": e.points,
                    "description": told_to_partner(e, partner.pk)[1]}
                   for e in recent_entries(member=member, limit=5, partner=partner)],
        "referral_link": _portal(reverse("feedback:referral-landing", args=[member.referral_code])),
        "for_you": _for_you(member=member, partner=partner),
        "portal_url": _portal(reverse("dashboard")),
    }
    return data


def _for_you(*, member: Member, partner: Partner, limit: int = 4) -> list[dict]:
    """What the launcher suggests: from this store's orders only (another store's purchases show
    neither here nor by absence), and only products this store sold or sent itself, linked only
    where the link stays on one of the store's own origins (any partner may name a SKU's page)."""
    found = recommendations_for_member(member=member, limit=limit * 3, partner=partner)
    skus = [r.sku for r in found]
    own = set(OrderLine.objects.filter(order__partner=partner, sku__in=skus).values_list("sku", flat=True)) | set(
        Product.objects.filter(partner=partner, sku__in=skus).values_list("sku", flat=True))
    origins = set(partner.embed.origins) if hasattr(partner, "embed") else set()
    return [{"sku": r.sku, "name": r.name, "url": r.url if origin_of(r.url) in origins else ""}
            for r in found if r.sku in own][:limit]


# --- Stars and reviews ---------------------------------------------------------------------------

MAX_STARS_SKUS = 100


def stars(*, skus: list[str]) -> dict[str, dict]:
    """``{sku: {"average": "4.3", "count": 12}}`` for the products of a listing, in one query: the
    product page's own summary, rounded the same way; a product without published reviews has
    count 0 and no average."""
    return {sku: {"count": summary.count, "average": str(summary.average) if summary.count else None}
            for sku, summary in rating_summaries(skus=skus).items()}


def reviewer_view(*, product: Product, member: Member | None, partner: Partner, review_ids: list[int]) -> dict:
    """What the reviews widget may offer the shopper: writing a review, and which of the shown
    reviews they already found helpful. Bought is judged on this store's orders only: another
    store's sales are not this store's to learn."""
    if member is None:
        return {"signed_in": False, "can_review": False, "why_not": "Sign in at the shop to write a review.",
                "has_reviewed": False, "voted": []}
    mine = Review.objects.filter(member=member, product=product).values_list("status", flat=True).first()
    verified = bought(member=member, sku=product.sku, partner=partner)
    why_not = ""
    rules = CommunitySettings.objects.filter(pk=1).first() or CommunitySettings()  # unsaved: the defaults
    if not verified and not rules.allow_unverified_reviews:
        why_not = "Only customers who bought this product can review it."
    voted = list(HelpfulVote.objects.filter(Q(member=member), review_id__in=review_ids)
                 .values_list("review_id", flat=True)) if review_ids else []
    return {"signed_in": True, "can_review": not why_not, "why_not": why_not, "has_reviewed": mine is not None,
            "review_status": mine or "", "verified_buyer": verified, "voted": sorted(voted)}
