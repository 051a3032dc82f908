"""The demo store's embed for ``seed_demo``: the demo shop's origins and a token secret."""

from storefront.services import (
    origin_clean,
    store_embed_ensure,
    store_embed_origins_set,
    store_embed_secret_rotate,
)


def seed(*, rng, stdout, context: dict) -> dict:
    shop = context["partners"][0]
    embed = store_embed_ensure(partner=shop)
    wanted = set(embed.origins)
    for origin in context.get("shop_origins", ()):
        try:
            wanted.add(origin_clean(origin))
        except ValueError as exc:  # make run HOST=0.0.0.0: a shop elsewhere must be served over https
            stdout.write(f"  the demo shop at {origin} cannot call the widgets: {exc}")
    if sorted(wanted) != embed.origins:
        store_embed_origins_set(partner=shop, origins=sorted(wanted))
    if not embed.secret_encrypted:
        store_embed_secret_rotate(partner=shop)
    return {}
