"""Public profiles and spotlights."""

from __future__ import annotations

import re

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AuditLog, Member, User
from community.models import PublicProfile, Spotlight
from core.errors import Conflict, Invalid
from core.images import clean_image

_CONTACT = re.compile(r"@|https?://|www\.", re.IGNORECASE)


def public_profile_update(*, member: Member, is_public: bool, display_name: str, avatar=None,
                          remove_avatar: bool = False, actor_user=None) -> PublicProfile:
    """Save what a member shows in public. Checks everything, processes the avatar (outside the
    transaction: it is slow), then writes. A public profile needs a display name. Staff editing it
    (``actor_user``) leave an audit row."""
    display_name = " ".join((display_name or "").split())
    if is_public and len(display_name) < 2:
        raise Invalid(_("A public profile needs a display name."),
                      fields={"display_name": _("At least 2 characters.")})
    if len(display_name) > 40:
        raise Invalid(_("At most 40 characters."), fields={"display_name": _("At most 40 characters.")})
    if _CONTACT.search(display_name):
        raise Invalid(_("Leave emails and links out of your display name."),
                      fields={"display_name": _("Leave emails and links out of your display name.")})
    picture = clean_image(avatar, field="avatar", max_side=256, thumb_side=None, max_bytes=5 * 1024 * 1024) \
        if avatar else None
    with transaction.atomic():
        profile, _created = PublicProfile.objects.select_for_update().get_or_create(member=member)
        profile.is_public, profile.display_name = is_public, display_name
        if remove_avatar and profile.avatar:
            profile.avatar.delete(save=False)
        if picture is not None:
            if profile.avatar:
                profile.avatar.delete(save=False)
            profile.avatar.save(f"member-{member.pk}.{picture.image.name.rsplit('.', 1)[-1]}", picture.image,
                                save=False)
        profile.save()
        if actor_user is not None:
            AuditLog.objects.create(action="profile.edited_by_staff", member=member, actor_user=actor_user,
                                    subject=f"member:{member.pk}",
                                    after={"is_public": is_public, "display_name": display_name, "avatar":
                                           "replaced" if picture else ("removed" if remove_avatar else "kept")})
    return profile


def spotlight_create(*, member: Member, headline: str, text: str, actor_user: User, ends_at=None) -> Spotlight:
    profile = PublicProfile.objects.filter(member=member, is_public=True).first()
    if profile is None:
        raise Conflict(_("Only members with a public profile can be featured."), code="not_public",
                       fields={"member": _("This member's profile is not public.")})
    spotlight = Spotlight.objects.create(member=member, headline=headline, text=text, created_by=actor_user,
                                         starts_at=timezone.now(), ends_at=ends_at)
    AuditLog.objects.create(action="community.spotlight", member=member, actor_user=actor_user,
                            subject=f"spotlight:{spotlight.pk}", after={"headline": headline})
    return spotlight


def member_erased(member: Member) -> None:
    """Erasure: the public profile and its picture go."""
    for profile in PublicProfile.objects.filter(member=member):
        if profile.avatar:
            profile.avatar.delete(save=False)
        profile.delete()
    Spotlight.objects.filter(member=member).delete()
