"""How the community reacts to events of the rest of the program (wired in ``core.events``)."""

from accounts.models import Member
from community.services import member_erased
from core.events import Emitted


def erase_member_content(*, event: str, items: list[Emitted]) -> None:
    """member.erased: the public profile, and everything the member wrote with its photos."""
    for member in Member.objects.filter(pk__in=[item.member_id for item in items]):
        member_erased(member)
