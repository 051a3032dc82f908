"""Demo community for ``seed_demo``: some members share a public profile (with a drawn avatar),
one is in the spotlight. Most members stay private, as most shoppers would."""

import io
import random

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw, ImageFont

from accounts.models import ExternalId
from community.models import PublicProfile, Spotlight
from community.services import public_profile_update, spotlight_create

PUBLIC_SHARE = 0.3


def _avatar(initials: str, rng: random.Random) -> SimpleUploadedFile:
    colour = tuple(rng.randint(40, 180) for _ in range(3))
    image = Image.new("RGB", (320, 320), colour)
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.load_default(size=140)
    except TypeError:  # Pillow before 10.1
        font = ImageFont.load_default()
    draw.text((160, 160), initials, fill=(255, 255, 255), font=font, anchor="mm")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return SimpleUploadedFile("avatar.jpg", buffer.getvalue(), content_type="image/jpeg")


def seed(*, rng: random.Random, stdout, context: dict) -> dict:
    if PublicProfile.objects.exists():
        return {}
    partner = context["partners"][0]
    members = [e.member for e in ExternalId.objects.filter(partner=partner).select_related("member")
               .order_by("external_id") if e.member.first_name]
    public = []
    for member in members:
        if member.pk == context["member"].pk or rng.random() < PUBLIC_SHARE:
            name = f"{member.first_name} {member.last_name[0]}."
            avatar = _avatar(member.first_name[0] + member.last_name[0], rng) if rng.random() < 0.7 else None
            public.append(public_profile_update(member=member, is_public=True, display_name=name, avatar=avatar))
    if public and not Spotlight.objects.exists():
        featured = max(public, key=lambda p: p.member.points_available)
        spotlight_create(member=featured.member, headline=f"Meet {featured.display_name}",
                         text="A regular since the shop opened, and the first to try every new tea.",
                         actor_user=context.get("staff"))
    return {}
