from django.conf import settings
from django.utils.functional import SimpleLazyObject


def program(request):
    from accounts.selectors import unread_notifications

    user = getattr(request, "user", None)
    return {"program_name": settings.PROGRAM_NAME, "site_url": settings.SITE_URL,
            # Counted only on pages that show it (the navigation of a signed-in member).
            "unread_notifications": SimpleLazyObject(lambda: unread_notifications(user=user))}
