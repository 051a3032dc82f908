"""What the member portal's dashboard shows, gathered from the apps that own each part."""

from accounts.models import Member


def dashboard_context(*, member: Member) -> dict:
    return {"member": member}
