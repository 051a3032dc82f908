"""A small shop on another origin that embeds the widgets, as a store would: its backend mints a
customer token for the signed-in shopper with the store's embed secret (here the demo member of
the Demo Tea Shop) and its pages carry the script and the elements. ``make run`` serves it beside
the portal; the browser tests serve it on a port of their own."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from django.db import close_old_connections
from django.template import Context, Engine

from community.models import Product
from storefront.models import StoreEmbed
from storefront.selectors import token_secrets
from storefront.tokens import token_mint

# The shop's own page, in the shop's own words (not Loyalty Loop's: not in its templates or catalogue).
PAGE = Engine().from_string((Path(__file__).resolve().parent / "demo" / "shop.html").read_text())


def _page(context: dict) -> bytes:
    return PAGE.render(Context(context)).encode()


class DemoShop:
    """``DemoShop(partner=..., customer="cust-demo", loyalty_url=...).start(port=0)`` -> its URL."""

    def __init__(self, *, partner, customer: str, loyalty_url: str):
        self.partner_id, self.customer, self.loyalty_url = partner.pk, customer, loyalty_url.rstrip("/")
        self.server: ThreadingHTTPServer | None = None
        self.forged_token = ""  # tests: what a page with a made-up token does

    def start(self, *, host: str = "127.0.0.1", port: int = 0) -> str:
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                close_old_connections()
                try:
                    status, body = shop.page(self.path)
                finally:
                    close_old_connections()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://{host}:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def page(self, path: str) -> tuple[int, bytes]:
        url = urlsplit(path)
        guest = "guest" in parse_qs(url.query)
        embed = StoreEmbed.objects.get(partner_id=self.partner_id)
        token = ""
        if not guest:
            # What the store's backend does for a signed-in shopper (docs/embed.md).
            token = self.forged_token or token_mint(secret=token_secrets(embed)[0], external_id=self.customer)
        context = {"loyalty": self.loyalty_url, "public_key": embed.public_key, "token": token, "guest": guest,
                   "shop": embed.partner.name}
        if url.path in ("", "/"):
            return 200, _page({**context, "products": Product.objects.order_by("name")[:12]})
        if url.path.startswith("/products/"):
            # Any product of the catalogue has its page, not only the twelve the front page lists.
            product = Product.objects.filter(sku=url.path.split("/")[2]).first()
            if product is not None:
                return 200, _page({**context, "product": product})
        return 404, b"Not found"
