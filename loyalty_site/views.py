import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views import defaults

from accounts.decorators import member_required
from core import api
from loyalty_site import portal


def home(request):
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "home.html")


@member_required
def dashboard(request):
    return render(request, "portal/dashboard.html", portal.dashboard_context(member=request.member))


_broker_client = None


def _broker_ok() -> bool:
    global _broker_client
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://")):
        if _broker_client is None:
            _broker_client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        return bool(_broker_client.ping())
    # RabbitMQ (amqp://): a connection kept in Celery's pool, and one round trip on it (basic.qos
    # waits for the broker's answer), not a new connection per probe.
    from loyalty_site.celery import app

    with app.pool.acquire(block=True, timeout=2) as conn:
        try:
            conn.ensure_connection(max_retries=1, timeout=2)
            conn.default_channel.basic_qos(0, 0, False)
        except Exception:
            conn.close()  # reconnected by the next probe
            raise
    return True


def healthz(request):
    """200 when the database (and the broker, when one is configured) answers; 503 otherwise."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001  any failure means "not healthy"
        checks["database"] = f"error: {exc.__class__.__name__}"
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        try:
            _broker_ok()
            checks["broker"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = f"error: {exc.__class__.__name__}"
    healthy = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if healthy else "unavailable", "checks": checks}
    return JsonResponse(body, status=200 if healthy else 503)


def server_error(request):
    if request.path.startswith("/api/"):
        return api.json_server_error(request)
    return defaults.server_error(request)
