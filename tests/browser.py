"""Playwright driving Debian's Chromium (never a downloaded browser)."""

import contextlib
import os

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the tests' own ORM reads are
    # still plain synchronous code, so tell Django not to refuse them.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    settle(page)
    context.close()


def settle(page) -> None:
    """Wait until the page has no request in flight (500 ms without one): the live server must not
    be serving a late request (a lazy image, a favicon) when the test's database is emptied after
    the test, or the request's queries and the TRUNCATE deadlock (seen once in CI)."""
    with contextlib.suppress(Exception):  # a page already closed or gone elsewhere: nothing left to wait for
        page.wait_for_load_state("networkidle", timeout=5_000)
