"""Writes on members, partners and API keys. Every change of state goes through here."""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from accounts.models import (
    ApiKey,
    AuditLog,
    Channel,
    ConsentEvent,
    ExternalId,
    Member,
    Notification,
    Partner,
    Purpose,
    Scope,
    User,
)
from accounts.selectors import partner_member_ids
from core import bulk, events
from core.errors import Conflict, Invalid
from core.events import Emitted
from core.rates import parse_rate
from core.text import IDENTIFIER_RULE, is_identifier

PROFILE_FIELDS = ("email", "first_name", "last_name", "birthday", "phone", "language")
_PHONE_JUNK = re.compile(r"[\s\-().]")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
# No 0/O, 1/I/L: codes are read aloud and typed from paper receipts.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_CODE_BYTES_BELOW = 256 - 256 % len(CODE_ALPHABET)  # a byte above would favour the first characters


def random_codes(count: int, length: int) -> list[str]:
    """``count`` strings of ``length`` characters of ``CODE_ALPHABET``, each drawn uniformly from
    the system's randomness (``secrets``), read in one go (``secrets.choice`` per character read it
    once per character: a system call each, 400,000 for an import's 100,000 new members)."""
    chars: list[str] = []
    while len(chars) < count * length:
        chars += [CODE_ALPHABET[byte % len(CODE_ALPHABET)]
                  for byte in secrets.token_bytes(count * length - len(chars) + 8) if byte < _CODE_BYTES_BELOW]
    return ["".join(chars[start:start + length]) for start in range(0, count * length, length)]


def normalize_email(email: str | None) -> str:
    return (email or "").strip().lower()


def check_birthday(birthday: date | None) -> date | None:
    """A birthday from 1900-01-01 to today (the member's own clock aside), or ``Invalid`` naming it."""
    if birthday is not None and not (date(1900, 1, 1) <= birthday <= timezone.localdate()):
        raise Invalid(_("Must be a date between 1900-01-01 and today."),
                      fields={"birthday": _("Must be a date between 1900-01-01 and today.")})
    return birthday


def normalize_phone(phone: str | None) -> str:
    """Return the phone in E.164 (``+441234567890``), or raise ``Invalid``.

    Spaces, dashes, dots and brackets are dropped and a leading ``00`` becomes ``+``. Numbers
    without a country code are refused rather than guessed.
    """
    raw = _PHONE_JUNK.sub("", phone or "")
    if not raw:
        return ""
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    if not _E164.match(raw):
        raise Invalid(
            _("Enter the number with its country code, for example +441234567890."),
            fields={"phone": _("Enter the number with its country code, for example +441234567890.")},
        )
    return raw


def check_language(language: str | None) -> str:
    """One of ``LANGUAGES`` (``de``; ``de-at`` is read as ``de``), or empty for the program's own,
    or ``Invalid`` naming the field."""
    code = (language or "").strip().lower()
    if not code:
        return ""
    codes = [known for known, _ in settings.LANGUAGES]
    if code not in codes and code.split("-")[0] in codes:
        code = code.split("-")[0]
    if code not in codes:
        message = _("Choose one of: %(codes)s.") % {"codes": ", ".join(codes)}
        raise Invalid(message, fields={"language": message})
    return code


def validate_external_id(external_id: str) -> str:
    if not is_identifier(external_id):
        raise Invalid(f"external_id must be {IDENTIFIER_RULE}.", fields={"external_id": f"Must be {IDENTIFIER_RULE}."})
    return external_id


def referral_code_generate(*, first_name: str = "") -> str:
    """A code like ``ADA-7K2Q``: readable, and unique (checked here, guaranteed by the index)."""
    return referral_codes_generate([first_name])[0]


def _audit(*, action: str, member: Member | None = None, actor_user: User | None = None,
           actor_partner: Partner | None = None, subject: str = "", before=None, after=None,
           reason: str = "") -> AuditLog:
    return AuditLog.objects.create(
        action=action, member=member, actor_user=actor_user, actor_partner=actor_partner,
        subject=subject, before=before, after=after, reason=reason,
    )


def _record_consents(*, member: Member, consents: dict[str, str], source: str,
                     partner: Partner | None = None) -> list[str]:
    """Set communication preferences, logging each one that actually changes."""
    changed = []
    for purpose, channel in consents.items():
        if purpose not in Purpose.values:
            raise Invalid(f"Unknown purpose {purpose!r}.", fields={f"consents.{purpose}": _("Unknown purpose.")})
        if channel not in Channel.values:
            raise Invalid(
                f"Unknown channel {channel!r}.",
                fields={f"consents.{purpose}": _("Choose one of %(channels)s.") % {
                    "channels": ", ".join(Channel.values)}},
            )
        if channel == Channel.SMS and not member.phone:
            raise Invalid(
                _("SMS needs a phone number."), fields={f"consents.{purpose}": _("Add a phone number to get SMS.")}
            )
        if member.channel_for(purpose) != channel:
            setattr(member, f"{purpose}_channel", channel)
            ConsentEvent.objects.create(member=member, purpose=purpose, channel=channel, source=source, partner=partner)
            changed.append(f"{purpose}_channel")
    return changed


def member_consents_set(*, member: Member, consents: dict[str, str], source: str) -> Member:
    """Change a member's communication preferences (an unsubscribe link, the preference centre),
    each change logged as proof of consent."""
    with transaction.atomic():
        member = Member.objects.select_for_update(no_key=True).get(pk=member.pk)
        changed = _record_consents(member=member, consents=consents, source=source)
        if changed:
            member.save(update_fields=[*changed, "updated_at"])
            events.emit("member.updated", member_id=member.pk, data={"changed": sorted(changed), "source": source})
    return member


def _member_create(*, email: str = "", first_name: str = "", last_name: str = "",
                   birthday: date | None = None, phone: str = "", language: str = "",
                   user: User | None = None) -> Member:
    member = Member.objects.create(
        email=email, first_name=first_name, last_name=last_name, birthday=birthday, phone=phone,
        language=language, user=user, referral_code=referral_code_generate(first_name=first_name),
    )
    events.emit("member.created", member_id=member.pk, occurred_at=member.created_at)
    return member


def referral_codes_generate(first_names: list[str]) -> list[str]:
    """Referral codes like ``ADA-7K2Q`` for new members, checked against the table in one query per
    round (the unique index guarantees them)."""
    codes = [""] * len(first_names)
    todo = list(range(len(first_names)))
    seen: set[str] = set()  # handed out in an earlier round of this call, not in the table yet
    for length in (4, 4, 5, 6, 8):
        proposals = {}
        for index, tail in zip(todo, random_codes(len(todo), length), strict=True):
            letters = "".join(ch for ch in first_names[index].upper() if "A" <= ch <= "Z")[:3] or "LL"
            proposals[index] = f"{letters}-{tail}"
        taken = _referral_codes_taken(list(proposals.values()))
        left = []
        for index, code in proposals.items():
            if code in taken or code in seen:
                left.append(index)
            else:
                seen.add(code)
                codes[index] = code
        todo = left
        if not todo:
            return codes
    raise RuntimeError("Could not find free referral codes.")


def _referral_codes_taken(codes: list[str]) -> set[str]:
    matches, params = bulk.any_of("referral_code", codes)
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT referral_code FROM "{Member._meta.db_table}" WHERE {matches}', params)
        return {row[0] for row in cursor.fetchall()}


def members_ensure_for_partner(*, partner: Partner, rows: dict[str, dict]) -> tuple[dict[str, int], int]:
    """The member ids for many of a partner's customer ids, and how many members were created.

    Missing customers are created in bulk.

    ``rows`` maps external id to optional profile data (``email``, ``first_name``...). A customer
    whose email belongs to an existing member is linked to that member. Existing links are left
    as they are. Used by imports, where one query per customer would take hours.
    """
    known = partner_member_ids(partner, rows)
    missing = {key: value for key, value in rows.items() if key not in known}
    if not missing:
        return known, 0
    for key in missing:
        validate_external_id(key)
    with transaction.atomic():
        emails = {normalize_email(data.get("email")): key for key, data in missing.items() if data.get("email")}
        by_email = dict(Member.objects.filter(email__in=emails).values_list("email", "pk"))
        # Another store's customers are not linked by email: that customer id gets a member of its
        # own, without the address (which stays with the member who has it).
        foreign = set(
            ExternalId.objects.filter(member_id__in=by_email.values())
            .exclude(partner_id__in=partner_ids_sharing_members(partner)).values_list("member_id", flat=True)
        )
        linked = {emails[email]: pk for email, pk in by_email.items() if pk not in foreign}
        now = timezone.now()
        emails_of, used_emails = {}, set(by_email)
        for key in missing:
            if key in linked:
                continue
            email = normalize_email(missing[key].get("email"))
            if email in used_emails:
                email = ""  # two customer ids with one address: only the first keeps it
            used_emails.add(email)
            emails_of[key] = email
        new_members, taken_meanwhile = _members_insert(missing, emails_of, now)
        linked.update({key: member.pk for key, member in new_members.items()})
        linked.update(taken_meanwhile)
        claimed = bulk.insert_new(
            ExternalId, ("partner_id", "member_id", "external_id", "created_at"),
            [(partner.pk, pk, key, now) for key, pk in linked.items()], unique=("partner_id", "external_id"),
        )
        lost = [key for key in linked if (partner.pk, key) not in claimed]
        if lost:
            # Another process linked some of these ids first: theirs stand.
            linked.update(ExternalId.objects.filter(partner=partner, external_id__in=lost)
                          .values_list("external_id", "member_id"))
        events.emit_many("member.created", [Emitted(m.pk, at=m.created_at) for m in new_members.values()])
    return {**known, **linked}, len(new_members)


_MEMBER_INSERT_FIELDS = ("email", "first_name", "last_name", "phone", "offers_channel", "reminders_channel",
                         "surveys_channel", "statements_channel", "referral_code", "points_available",
                         "points_pending", "points_owed", "created_at", "updated_at")


@dataclass(frozen=True, slots=True)
class NewMember:
    """A member made in bulk: its id and when it was created."""

    pk: int
    created_at: datetime


def _members_insert(missing: dict[str, dict], emails_of: dict[str, str], now
                    ) -> tuple[dict[str, NewMember], dict[str, int]]:
    """Insert new members in bulk; return them, and the customers whose email another process gave
    a member meanwhile (linked to that member). A row that clashes with a unique value another
    process has just taken (a referral code, an email) is not inserted: it gets a new code, or is
    linked to the member with that email, and the rest go on."""
    created: dict[str, NewMember] = {}
    taken_meanwhile: dict[str, int] = {}
    todo = list(emails_of)
    for _attempt in range(5):
        if not todo:
            return created, taken_meanwhile
        codes = referral_codes_generate([missing[key].get("first_name", "") for key in todo])
        # Sorted by code: two processes inserting at once then take the unique index's locks in the
        # same order, so one waits for the other instead of both waiting for each other (deadlock).
        rows = sorted(
            (emails_of[key], missing[key].get("first_name", ""), missing[key].get("last_name", ""), "",
             Channel.NONE, Channel.EMAIL, Channel.NONE, Channel.NONE, code, 0, 0, 0, now, now)
            for key, code in zip(todo, codes, strict=True)
        )
        inserted = bulk.insert_new(Member, _MEMBER_INSERT_FIELDS, rows, unique="referral_code", any_conflict=True)
        left = []
        for key, code in zip(todo, codes, strict=True):
            if code in inserted:
                created[key] = NewMember(inserted[code], now)
            else:
                left.append(key)
        taken = dict(Member.objects.filter(email__in=[emails_of[k] for k in left if emails_of[k]])
                     .values_list("email", "pk"))
        todo = []
        for key in left:
            if emails_of[key] in taken:
                taken_meanwhile[key] = taken[emails_of[key]]
            else:
                todo.append(key)
    if todo:
        raise RuntimeError("Could not insert members after five attempts.")
    return created, taken_meanwhile


def _email_taken() -> Conflict:
    # The same words whoever holds the address: the answer must not tell one store about another's
    # customers beyond the fact, unavoidable with unique emails, that the address is in use.
    return Conflict(
        _("Another member already uses this email address."),
        code="email_taken",
        fields={"email": _("Another member already uses this email address.")},
    )


def member_email_check(*, email: str, member: Member | None) -> None:
    """``Conflict`` (email_taken) when another member than ``member`` has ``email``."""
    if not email:
        return
    clash = Member.objects.filter(email=email).exclude(pk=member.pk if member else None).exists()
    if clash:
        raise _email_taken()


def partner_ids_sharing_members(partner: Partner) -> set[int]:
    """The partner and those staff marked as the same store: who may link each other's members."""
    return {partner.pk, *partner.shares_members.values_list("pk", flat=True)}


def _may_link(*, partner: Partner, member_id: int) -> bool:
    """A partner may take on an existing member by email only if no other store knows them.

    A member nobody knows yet (signed up in the portal) or known only to partners that staff
    marked as one store with this one may be linked; a customer of another store may not.
    """
    linked = set(ExternalId.objects.filter(member_id=member_id).values_list("partner_id", flat=True))
    return linked <= partner_ids_sharing_members(partner)


def member_upsert_for_partner(*, partner: Partner, external_id: str, data: dict[str, Any],
                              consents: dict[str, str] | None = None) -> tuple[Member, bool]:
    """Create or update the member that ``partner`` calls ``external_id``.

    Only the keys present in ``data`` change. Guarantees: one member per (partner, external id),
    also under concurrent calls (the unique index decides, the loser re-reads); a member already
    known by this email (signed up in the portal, or sent by another partner) is linked, never
    duplicated; an email that belongs to a different member is refused with ``Conflict``.
    """
    external_id = validate_external_id(external_id)
    data = {key: value for key, value in data.items() if key in PROFILE_FIELDS}
    if "email" in data:
        data["email"] = normalize_email(data["email"])
    if "phone" in data:
        data["phone"] = normalize_phone(data["phone"])
    if "language" in data:
        data["language"] = check_language(data["language"])

    for attempt in range(3):
        try:
            with transaction.atomic():
                return _member_upsert(partner=partner, external_id=external_id, data=data, consents=consents or {})
        except IntegrityError:
            # A concurrent call created the same link or email first; the next pass finds it.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _member_upsert(*, partner, external_id, data, consents) -> tuple[Member, bool]:
    link = ExternalId.objects.filter(partner=partner, external_id=external_id).first()
    created = False
    if link is not None:
        member = Member.objects.select_for_update(no_key=True).get(pk=link.member_id)
        if "email" in data:
            member_email_check(email=data["email"], member=member)
    else:
        member = None
        if data.get("email"):
            member = Member.objects.select_for_update(no_key=True).filter(email=data["email"]).first()
            if member is not None and not _may_link(partner=partner, member_id=member.pk):
                raise _email_taken()
        if member is None:
            member = _member_create(**data)
            created = True
        links = ExternalId.objects.filter(partner=partner, member=member)
        known_as = links.values_list("external_id", flat=True).first()
        if known_as is None:
            ExternalId.objects.create(partner=partner, member=member, external_id=external_id)
        elif known_as != external_id:
            raise Conflict(
                _("This email belongs to a member you already know under another external_id."),
                code="email_taken",
                fields={"email": _("This email belongs to a member you know under another external_id.")},
            )
        # else: a concurrent call linked this very id while we waited for the lock; update it.

    changed = []
    if not created:
        for key, value in data.items():
            if getattr(member, key) != value:
                setattr(member, key, value)
                changed.append(key)
    changed += _record_consents(member=member, consents=consents, source="api", partner=partner)
    if changed:
        member.save(update_fields=[*changed, "updated_at"])
        events.emit("member.updated", member_id=member.pk, data={"changed": sorted(changed), "source": "api"})
    return member, created


def member_attach_user(*, user: User, email: str, language: str = "") -> Member:
    """Give a user who has just verified ``email`` their member.

    A member a partner created earlier with the same email becomes this user's member: the
    verification proves the person controls that address. Otherwise a new member is created.
    ``language`` is the one they signed up in: kept for a member who has none yet.
    """
    existing = Member.objects.filter(user=user).first()
    if existing is not None:
        return existing
    email, language = normalize_email(email), check_language(language)
    with transaction.atomic():
        member = (
            Member.objects.select_for_update(no_key=True)
            .filter(email=email, user__isnull=True, erased_at__isnull=True)
            .first()
        )
        if member is not None:
            member.user = user
            member.language = member.language or language
            member.save(update_fields=["user", "language", "updated_at"])
            return member
        if Member.objects.filter(email=email).exists():
            # The address belongs to another login's member (it changed hands); do not share it.
            email = ""
        return _member_create(user=user, email=email, language=language)


def member_get_or_create_for_user(*, user: User) -> Member:
    member = Member.objects.filter(user=user).first()
    return member or member_attach_user(user=user, email=user.email)


def member_change_email(*, member: Member, email: str) -> Member:
    """Follow the login's new primary email, unless another member already has it."""
    email = normalize_email(email)
    with transaction.atomic():
        member_email_check(email=email, member=member)
        member.email = email
        member.save(update_fields=["email", "updated_at"])
    return member


_UNCHANGED: Any = object()


def member_update_profile(*, member: Member, first_name: str | None = None, last_name: str | None = None,
                          birthday: date | None = _UNCHANGED, phone: str | None = None,
                          consents: dict[str, str] | None = None, language: str | None = None) -> Member:
    """Save the member's own profile edits from the portal: the whole profile form, or one thing
    (the language picked in the page's switcher). What is not given stays as it is."""
    values: dict[str, Any] = {}
    if first_name is not None:
        values["first_name"] = first_name.strip()
    if last_name is not None:
        values["last_name"] = last_name.strip()
    if birthday is not _UNCHANGED:
        values["birthday"] = check_birthday(birthday)
    if phone is not None:
        values["phone"] = normalize_phone(phone)
    if language is not None:
        values["language"] = check_language(language)
    with transaction.atomic():
        member = Member.objects.select_for_update(no_key=True).get(pk=member.pk)
        changed = [field for field, value in values.items() if getattr(member, field) != value]
        for field, value in values.items():
            setattr(member, field, value)
        changed += _record_consents(member=member, consents=consents or {}, source="portal")
        member.save()
        if changed:
            events.emit("member.updated", member_id=member.pk, data={"changed": sorted(changed), "source": "portal"})
    return member


def member_export(*, member: Member, actor_user: User | None = None,
                  actor_partner: Partner | None = None) -> dict[str, Any]:
    """Everything the program holds about a member, as JSON-ready data (GDPR access request).

    Asked for by staff or a partner (not the member), the request is kept in the audit log."""
    if actor_user is not None or actor_partner is not None:
        _audit(action="member.exported", member=member, actor_user=actor_user, actor_partner=actor_partner,
               subject=f"member:{member.pk}", reason="data access request")
    data: dict[str, Any] = {
        "exported_at": timezone.now().isoformat(),
        "profile": {
            "email": member.email,
            "first_name": member.first_name,
            "last_name": member.last_name,
            "birthday": member.birthday.isoformat() if member.birthday else None,
            "phone": member.phone,
            "language": member.language,
            "referral_code": member.referral_code,
            "member_since": member.created_at.isoformat(),
        },
        "communication_preferences": {purpose: member.channel_for(purpose) for purpose in Purpose.values},
        "consent_history": [
            {"purpose": e.purpose, "channel": e.channel, "source": e.source, "at": e.created_at.isoformat()}
            for e in member.consent_events.all()
        ],
        "partner_ids": [
            {"partner": link.partner.name, "external_id": link.external_id}
            for link in member.external_ids.select_related("partner")
        ],
    }
    for name, path in EXPORT_SECTIONS.items():
        data[name] = import_string(path)(member)
    return data


def member_erase(*, member: Member, actor_user: User | None = None, actor_partner: Partner | None = None,
                 reason: str = "") -> Member:
    """Erase a member's personal data and delete their login; keep the program's books.

    Ledger entries, orders and other activity stay (the store needs them for its accounts) but no
    longer point at anything that identifies a person: profile fields are blanked, the partners'
    customer ids and the consent history are deleted, and the login goes.
    """
    with transaction.atomic():
        member = Member.objects.select_for_update(no_key=True).get(pk=member.pk)
        if member.erased_at:
            return member
        user = member.user
        member.email = member.first_name = member.last_name = member.phone = ""
        member.birthday = None
        member.offers_channel = member.reminders_channel = member.surveys_channel = Channel.NONE
        member.statements_channel = Channel.NONE
        member.erased_at = timezone.now()
        member.user = None
        member.save()
        # Announced before the partners' ids go, carrying them: each partner is told with its own id.
        events.emit("member.erased", member_id=member.pk, data={"external_ids": {
            str(partner_id): external_id
            for partner_id, external_id in member.external_ids.values_list("partner_id", "external_id")}})
        member.external_ids.all().delete()
        member.consent_events.all().delete()
        _audit(action="member.erased", member=member, actor_user=actor_user, actor_partner=actor_partner,
               subject=f"member:{member.pk}", reason=reason or "erasure requested")
        if user is not None:
            user.delete()
    return member


# --- Partners and API keys ---------------------------------------------------------------------

# What each app holds about a member, for their data download: section name -> fn(member) -> data.
EXPORT_SECTIONS = {
    "points": "rewards.member_data.member_export_points",
    "progress": "rewards.member_data.member_export_progress",
    "community_profile": "community.selectors.member_export_profile",
    "reviews": "community.selectors.member_export_reviews",
    "feedback": "feedback.selectors.member_export_section",
}


def api_keys_changed() -> None:
    """After a key or partner changes: every process looks keys up again once it is committed."""
    from accounts.authentication import api_keys_changed as changed

    changed()


def hash_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def _check_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise Invalid(_("Unknown scopes: %(scopes)s.") % {"scopes": ", ".join(unknown)},
                      fields={"scopes": _("Unknown: %(scopes)s") % {"scopes": ", ".join(unknown)}})
    if not scopes:
        raise Invalid(_("A key needs at least one scope."), fields={"scopes": _("Choose at least one scope.")})
    return sorted(set(scopes))


def partner_create(*, name: str, actor_user: User | None = None) -> Partner:
    name = name.strip()
    if not name:
        raise Invalid(_("A partner needs a name."), fields={"name": _("This field is required.")})
    if Partner.objects.filter(name__iexact=name).exists():
        raise Conflict(_("A partner named %(name)s already exists.") % {"name": repr(name)},
                       fields={"name": _("Already exists.")})
    with transaction.atomic():
        partner = Partner.objects.create(name=name)
        _audit(action="partner.created", actor_user=actor_user, subject=f"partner:{partner.pk}", after={"name": name})
    return partner


def rate_limit_clean(rate_limit: str) -> str:
    rate_limit = (rate_limit or "").strip()
    if not rate_limit:
        return ""
    try:
        return str(parse_rate(rate_limit))
    except ValueError as exc:
        raise Invalid(str(exc), fields={
            "rate_limit": _("Write it like 600/min (per sec, min, hour or day).")}) from None


def api_key_create(*, partner: Partner, name: str, scopes: list[str], rate_limit: str = "",
                   actor_user: User | None = None) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is never stored and never shown again."""
    scopes = _check_scopes(scopes)
    rate_limit = rate_limit_clean(rate_limit)
    raw = "ll_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        key = ApiKey.objects.create(
            partner=partner, name=name.strip() or "API key", prefix=raw[:11], key_hash=hash_api_key(raw),
            scopes=scopes, rate_limit=rate_limit, created_by=actor_user,
        )
        _audit(action="api_key.created", actor_user=actor_user, subject=f"api_key:{key.pk}",
               after={"partner": partner.name, "name": key.name, "prefix": key.prefix, "scopes": scopes,
                      "rate_limit": rate_limit or "default"})
    api_keys_changed()  # a process that was sent this key before it existed forgets that it did not
    return key, raw


def api_key_set_rate_limit(*, api_key: ApiKey, rate_limit: str, actor_user: User | None = None) -> ApiKey:
    """Give a key its own rate limit (``600/min``), or back the default with ``""``; audited."""
    rate_limit = rate_limit_clean(rate_limit)
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        if key.rate_limit != rate_limit:
            _audit(action="api_key.rate_limit_changed", actor_user=actor_user, subject=f"api_key:{key.pk}",
                   before={"rate_limit": key.rate_limit or "default"}, after={"rate_limit": rate_limit or "default"})
            key.rate_limit = rate_limit
            key.save(update_fields=["rate_limit"])
    api_keys_changed()
    return key




def api_key_revoke(*, api_key: ApiKey, actor_user: User | None = None, reason: str = "") -> ApiKey:
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if updated:
            _audit(action="api_key.revoked", actor_user=actor_user, subject=f"api_key:{api_key.pk}",
                   before={"prefix": api_key.prefix}, reason=reason)
    api_keys_changed()
    api_key.refresh_from_db()
    return api_key


def partner_set_active(*, partner: Partner, active: bool, actor_user: User | None = None) -> Partner:
    """Pause a partner (every key gets 401) or resume it."""
    with transaction.atomic():
        Partner.objects.filter(pk=partner.pk).update(is_active=active)
        _audit(action="partner.resumed" if active else "partner.paused", actor_user=actor_user,
               subject=f"partner:{partner.pk}")
    api_keys_changed()
    partner.refresh_from_db()
    return partner


def partner_set_sharing(*, partner: Partner, shares_with: list[Partner], actor_user: User | None = None) -> Partner:
    """Mark which partners are the same store as ``partner`` (both ways), audited.

    Only staff do this: it lets those partners link each other's members by email and so read
    them. Existing links are not touched by taking the mark away.
    """
    wanted = {p.pk for p in shares_with if p.pk != partner.pk}
    with transaction.atomic():
        partner = Partner.objects.select_for_update().get(pk=partner.pk)
        before = sorted(partner.shares_members.values_list("pk", flat=True))
        if set(before) != wanted:
            partner.shares_members.set(wanted)
            names = dict(Partner.objects.filter(pk__in=[*before, *wanted]).values_list("pk", "name"))
            _audit(action="partner.sharing_changed", actor_user=actor_user, subject=f"partner:{partner.pk}",
                   before={"shares_members": [names[pk] for pk in before]},
                   after={"shares_members": [names[pk] for pk in sorted(wanted)]})
    return partner


def partner_rename(*, partner: Partner, name: str, actor_user: User | None = None) -> Partner:
    name = name.strip()
    if not name:
        raise Invalid(_("A partner needs a name."), fields={"name": _("This field is required.")})
    with transaction.atomic():
        partner = Partner.objects.select_for_update().get(pk=partner.pk)
        if partner.name != name:
            if Partner.objects.filter(name__iexact=name).exclude(pk=partner.pk).exists():
                raise Conflict(_("A partner named %(name)s already exists.") % {"name": repr(name)},
                               fields={"name": _("Already exists.")})
            _audit(action="partner.renamed", actor_user=actor_user, subject=f"partner:{partner.pk}",
                   before={"name": partner.name}, after={"name": name})
            partner.name = name
            partner.save(update_fields=["name"])
    return partner


def api_key_touch(*, api_key: ApiKey) -> None:
    """Note when a key was last used, at most once a minute so reads stay reads."""
    now = timezone.now()
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now


# --- Notifications ---------------------------------------------------------------------------------

def notifications_mark_read(*, member: Member) -> int:
    return Notification.objects.filter(member=member, read_at__isnull=True).update(read_at=timezone.now())


# --- Staff edits in the admin ----------------------------------------------------------------------

def _shown(value) -> str:
    return "" if value is None else str(value)


def staff_save(*, form, formsets=(), actor_user: User | None, action: str = "") -> Any:
    """Save what staff edited in the admin (a validated model form and its inline formsets) in one
    transaction, with one audit row: each changed field before and after, and which inlines changed.

    For settings and catalogue rows (rewards, badges, challenges, surveys, products...). Rows with
    invariants of their own (a member's balances, a tier's threshold) have their own services.
    """
    instance = form.instance
    meta = instance._meta
    created = instance.pk is None
    concrete = {f.name for f in meta.concrete_fields}
    fields = [name for name in form.changed_data if name in concrete]
    with transaction.atomic():
        before = {}
        if not created and fields:
            row = type(instance)._default_manager.filter(pk=instance.pk).values(*fields).first() or {}
            before = {name: _shown(value) for name, value in row.items()}
        instance = form.save()
        inlines = []
        for formset in formsets:
            formset.instance = instance
            formset.save()
            if formset.has_changed():
                inlines.append(formset.prefix)
        if created or form.changed_data or inlines:
            after = {name: _shown(getattr(instance, name)) for name in fields}
            m2m = [name for name in form.changed_data if name not in concrete]
            after.update({name: ", ".join(str(o) for o in getattr(instance, name).all()) for name in m2m})
            if inlines:
                after["inlines changed"] = ", ".join(inlines)
            _audit(action=action or f"{meta.model_name}.{'created' if created else 'changed'}", actor_user=actor_user,
                   subject=f"{meta.model_name}:{instance.pk}", before=before or None, after=after)
    return instance


STAFF_MEMBER_FIELDS = ("email", "first_name", "last_name", "birthday", "phone")


def member_staff_update(*, member: Member, data: dict[str, Any], actor_user: User | None) -> Member:
    """Staff correct a member's profile: the same rules as everywhere (email normalised and not
    another member's, phone in E.164), only the fields named written (never the balances, which
    only the ledger writes), under the member's lock, audited, announced (``member.updated``)."""
    data = {key: value for key, value in data.items() if key in STAFF_MEMBER_FIELDS}
    if "email" in data:
        data["email"] = normalize_email(data["email"])
    if "phone" in data:
        data["phone"] = normalize_phone(data["phone"])
    if "birthday" in data:
        data["birthday"] = check_birthday(data["birthday"])
    with transaction.atomic():
        member = Member.objects.select_for_update(no_key=True).get(pk=member.pk)
        if "email" in data:
            member_email_check(email=data["email"], member=member)
        changed = [key for key, value in data.items() if getattr(member, key) != value]
        if not changed:
            return member
        before = {key: _shown(getattr(member, key)) for key in changed}
        for key in changed:
            setattr(member, key, data[key])
        member.save(update_fields=[*changed, "updated_at"])
        _audit(action="member.profile_edited", member=member, actor_user=actor_user, subject=f"member:{member.pk}",
               before=before, after={key: _shown(getattr(member, key)) for key in changed})
        events.emit("member.updated", member_id=member.pk, data={"changed": sorted(changed), "source": "staff"})
    return member
