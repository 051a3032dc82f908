from django.conf import settings
from django.utils.functional import SimpleLazyObject


def program(request):
    from accounts.selectors import unread_notifications
    from rewards.program import current_program

    user = getattr(request, "user", None)
    brand = current_program().brand
    return {"program_name": brand.name, "brand": brand, "site_url": settings.SITE_URL,
            # Counted only on pages that show it (the navigation of a signed-in member).
            "unread_notifications": SimpleLazyObject(lambda: unread_notifications(user=user))}
