from functools import wraps

from django.contrib.auth.decorators import login_required

from accounts.services import member_get_or_create_for_user


def member_required(view):
    """Log in first; then ``request.member`` is the member behind the login."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        request.member = member_get_or_create_for_user(user=request.user)
        return view(request, *args, **kwargs)

    return wrapper
