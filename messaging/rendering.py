"""One template per message, ``messages/<template>.html`` extending ``messages/base.html`` (the
program's name, colours and a link back): its ``subject`` block is the subject, the page is the
HTML part, and the text part and the SMS are made from the same page, so the three never say
different things."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from messaging import catalogue

SMS_LENGTH = 320


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    sms: str
    program_name: str


class _Text(HTMLParser):
    """The text of the message's body: paragraphs on their own lines, links as "text: url"."""

    BREAKS = {"p", "div", "br", "h1", "h2", "h3", "li", "tr", "table"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in {"style", "script", "title"}:
            self.skip += 1
        if tag in self.BREAKS:
            self.parts.append("\n\n" if tag not in {"br", "li", "tr"} else "\n")
        if tag == "li":
            self.parts.append("- ")
        if tag == "a":
            self.links.append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag):
        if tag in {"style", "script", "title"}:
            self.skip -= 1
        if tag == "a" and self.links:
            href = self.links.pop()
            if href and not href.startswith("mailto:"):
                self.parts.append(f": {href}")
        if tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(markup: str) -> str:
    parser = _Text()
    parser.feed(markup)
    lines = [line.strip() for line in "".join(parser.parts).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def _body(markup: str) -> str:
    found = re.search(r"<!-- body -->(.*)<!-- /body -->", markup, re.S)
    return found.group(1) if found else markup


def language_for(context: dict, member=None) -> str:
    """The language a message is written in: the one its words were made in (``context["language"]``:
    allauth's mails, a friend's invitation, a test send), else the member's, else the program's."""
    return catalogue.language_of(context.get("language") or getattr(member, "language", "") or "")


def render(*, template: str, context: dict, member=None, unsubscribe_url: str = "",
           preferences_url: str = "") -> Rendered:
    """Render a message from the outbox, in its reader's language (``language_for``). ``raw``
    messages (mail any code sent through Django's ``send_mail``, allauth's among them) carry their
    subject and text and get the same layout."""
    with translation.override(language_for(context, member)):
        return _render(template=template, context=context, member=member, unsubscribe_url=unsubscribe_url,
                       preferences_url=preferences_url)


def _render(*, template: str, context: dict, member, unsubscribe_url: str, preferences_url: str) -> Rendered:
    from rewards.program import current_program

    brand = current_program().brand
    base = {"program_name": brand.name, "brand": brand, "site_url": settings.SITE_URL, "member": member,
            "unsubscribe_url": unsubscribe_url, "preferences_url": preferences_url, **context}
    if template == "raw":
        subject, text = str(context.get("subject", "")), str(context.get("body", ""))
        markup = context.get("html") or render_to_string("messages/raw.html", {**base, "member": None,
                                                                                "subject": subject, "text": text})
        return Rendered(subject, text, markup, _sms(brand.name, subject, text), brand.name)
    if template != "note" and template in catalogue.KINDS:  # the kind's words, staff's or the defaults
        words = catalogue.wording(template)  # in the active language: the reader's
        values = {name: value for name, value in context.items() if isinstance(value, str | int)}
        base["wording"] = {"title": words.title(**values), "body": words.body(**values)}
    markup = render_to_string(f"messages/{template}.html", base)
    found = re.search(r"<title>(.*?)</title>", markup, re.S)
    subject = html.unescape(found.group(1)).strip() if found else brand.name
    text = html_to_text(_body(markup))
    footer = f"\n--\n{brand.name}: {settings.SITE_URL}/\n"
    if brand.support_email:
        footer += _("Questions? Write to %(email)s") % {"email": brand.support_email} + "\n"
    if unsubscribe_url:
        footer += _("Unsubscribe: %(url)s") % {"url": unsubscribe_url} + "\n"
    return Rendered(subject, text + footer, markup, _sms(brand.name, subject, text), brand.name)


def _sms(name: str, subject: str, text: str) -> str:
    words = " ".join(text.split())
    message = f"{name}: {words}" if words else f"{name}: {subject}"
    return message if len(message) <= SMS_LENGTH else message[:SMS_LENGTH - 1] + "…"


def sample_message(key: str, language: str | None = None) -> tuple[str, dict]:
    """The template and context of a kind's message with its sample values, in its current words
    in a language (the active one when not given)."""
    language = catalogue.language_of(language or translation.get_language())
    with translation.override(language):
        words, values = catalogue.sample(key, language)
        kind = words.kind
        if kind.template == "note":
            return "note", {"title": words.title(**values), "body": words.body(**values), "url": "/rewards/",
                            "kind": key}
        return kind.template, {**kind.sample_context, **{name: value if isinstance(value, int) else str(value)
                                                         for name, value in kind.placeholders.items()}}


def preview(key: str, language: str | None = None) -> Rendered:
    """A kind's message as a member would get it, with sample values (the admin's preview), in a
    language (the active one when not given)."""
    from types import SimpleNamespace

    language = catalogue.language_of(language or translation.get_language())
    template, context = sample_message(key, language)
    return render(template=template, context={**context, "language": language},
                  member=SimpleNamespace(pk=0, first_name="Ada", language=language),
                  unsubscribe_url=f"{settings.SITE_URL}/messages/unsubscribe/sample/",
                  preferences_url=f"{settings.SITE_URL}/messages/preferences/sample/")
