from django.utils import timezone

from rewards.program import current_program

# The API speaks UTC; the health check must not need the database for anything but its probe.
_SKIP = ("/api/", "/healthz", "/static/", "/media/")


def program_timezone(get_response):
    """Show portal and admin dates in the program's time zone (the one its rules and expiry use)."""

    def middleware(request):
        if request.path.startswith(_SKIP):
            return get_response(request)
        timezone.activate(current_program().tz)
        try:
            return get_response(request)
        finally:
            timezone.deactivate()

    return middleware
