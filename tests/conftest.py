"""Shared fixtures. Personas: alice and bob are members with portal logins, staff runs the
program, the Tea Shop and the Coffee Bar are partners with API keys."""

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from rest_framework.test import APIClient

from accounts.models import Scope, User
from accounts.services import api_key_create, member_attach_user, member_update_profile, partner_create

CHROMIUM = "/usr/bin/chromium"


def pytest_addoption(parser):
    parser.addoption("--screenshots", action="store_true", help="Write README screenshots to docs/screenshots.")


def pytest_collection_modifyitems(config, items):
    on_postgres = settings.IS_POSTGRES
    eager = settings.CELERY_TASK_ALWAYS_EAGER
    have_browser = os.path.exists(CHROMIUM) and shutil.which("chromium") is not None
    require_browser = os.environ.get("REQUIRE_BROWSER") == "1"
    for item in items:
        if ("postgres" in item.keywords or "replica" in item.keywords) and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (DATABASE_URL)"))
        if "celery_worker" in item.keywords and (eager or not on_postgres):
            item.add_marker(pytest.mark.skip(reason="needs a broker (CELERY_BROKER_URL) and PostgreSQL"))
        if "browser" in item.keywords and not have_browser and not require_browser:
            item.add_marker(pytest.mark.skip(reason="Debian's chromium is not installed"))
        if "screenshots" in item.keywords and not config.getoption("--screenshots"):
            item.add_marker(pytest.mark.skip(reason="run with --screenshots (make screenshots)"))


ALL_SCOPES = list(Scope.values)


def make_portal_member(email: str, password: str = "correct-horse-battery", **profile):
    """A shopper who signed up and verified their email, as the signup flow leaves them."""
    user = User.objects.create_user(email, password)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    member = member_attach_user(user=user, email=email)
    if profile:
        # ...and then filled in their profile in the portal.
        member = member_update_profile(member=member, first_name=profile.pop("first_name", ""),
                                       last_name=profile.pop("last_name", ""), birthday=profile.pop("birthday", None),
                                       phone=profile.pop("phone", ""), consents=profile.pop("consents", {}),
                                       language=profile.pop("language", None))
    assert not profile, f"make_portal_member does not set {sorted(profile)}"
    return member


@pytest.fixture
def alice(db):
    return make_portal_member("alice@example.com", first_name="Alice", last_name="Archer")


@pytest.fixture
def bob(db):
    return make_portal_member("bob@example.com", first_name="Bob", last_name="Baker")


@pytest.fixture
def staff(db):
    return User.objects.create_superuser("staff@example.com", "staff-password-1", name="Sam Staff")


@pytest.fixture
def staff_client(staff):
    """A client logged in as staff (its own: ``client`` may be a member's in the same test)."""
    from django.test import Client

    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice.user)
    return client


@pytest.fixture
def tea_shop(db):
    return partner_create(name="Tea Shop")


@pytest.fixture
def coffee_bar(db):
    return partner_create(name="Coffee Bar")


def partner_client(partner, scopes=None) -> APIClient:
    _, raw = api_key_create(partner=partner, name="tests", scopes=scopes or ALL_SCOPES)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    client.partner = partner
    client.raw_key = raw
    return client


@pytest.fixture
def api(tea_shop):
    return partner_client(tea_shop)


@pytest.fixture
def coffee_api(coffee_bar):
    return partner_client(coffee_bar)


def _flush_retrying_a_deadlock():
    """After a test on PostgreSQL that commits, Django empties every table with one TRUNCATE. A
    query still running then (a late request to the live server, a task the session's Celery worker
    took) can deadlock with it, and PostgreSQL cancels one of the two: when it is the TRUNCATE,
    empty the tables again (seen once in CI, after the accessibility walk)."""
    from django.core.management.base import CommandError
    from django.test import testcases

    plain = testcases.TransactionTestCase._fixture_teardown

    def teardown(self):
        for attempt in range(3):
            try:
                return plain(self)
            except CommandError as exc:
                if attempt == 2 or "deadlock detected" not in str(exc.__cause__ or ""):
                    raise
                time.sleep(0.5)

    testcases.TransactionTestCase._fixture_teardown = teardown


def pytest_configure(config):
    _flush_retrying_a_deadlock()
    # Real hashing is slow by design; tests only need it to be a hash.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Pictures the tests upload or draw go to a folder of this run, not the project's media/.
    import tempfile

    settings.MEDIA_ROOT = tempfile.mkdtemp(prefix="loyalty-test-media-")
    settings.PRIVATE_MEDIA_ROOT = tempfile.mkdtemp(prefix="loyalty-test-private-media-")
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        # Queues of this run's own, and of this xdist worker's own (each has its own test database
        # and its own Celery worker): nothing left by an earlier run, or sent by the other, reaches
        # them. Workers the tests start read the same names from the environment.
        queues = use_queues(f"tests-{uuid.uuid4().hex[:12]}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
        config.add_cleanup(lambda: delete_queues(*queues.values()))
    # Each xdist worker gets its own Redis cache database, the ones after CACHE_URL's (1 -> 2, 3...),
    # so clearing it between tests (login rate limits live there) never touches another worker's
    # keys, nor another run's that names another database.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    cache = settings.CACHES["default"]
    if worker and cache["BACKEND"].endswith("RedisCache"):
        base, _, database = cache["LOCATION"].rpartition("/")
        if not database.isdigit():  # redis://host:port names database 0
            base, database = cache["LOCATION"].rstrip("/"), "0"
        cache["LOCATION"] = f"{base}/{(int(database) + 1 + int(worker.removeprefix('gw'))) % 16}"


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import cache

    cache.clear()
    yield


def use_queues(run: str, *, target=settings) -> dict[str, str]:
    """Send this process's tasks to queues named after ``run`` (one per kind of work), and give
    the same names to the workers the tests start (through the environment). ``target``: the
    settings to change (a test's ``settings`` fixture, which puts them back after the test)."""
    return route_to({kind: run if kind == "default" else f"{run}-{kind}" for kind in settings.TASK_QUEUE_VARIABLES},
                    target=target)


def route_to(queues: dict[str, str], *, target=settings) -> dict[str, str]:
    """Send this process's tasks, and the workers' the tests start, to these queues (by kind)."""
    from loyalty_site.celery import app

    for kind, name in queues.items():
        os.environ[settings.TASK_QUEUE_VARIABLES[kind]] = name
    routes = {task: {"queue": queues[kind]} for task, kind in settings.TASK_KINDS.items()}
    target.TASK_QUEUES, target.CELERY_TASK_DEFAULT_QUEUE, target.CELERY_TASK_ROUTES = queues, queues["default"], routes
    app.conf.task_default_queue, app.conf.task_routes = queues["default"], routes
    # Celery builds its router once per process: after an earlier test sent a task, new routes were
    # ignored (CI: a crash test's tries went to a queue nobody read).
    app.amqp.flush_routes()
    app.amqp.__dict__.pop("router", None)
    return queues


@pytest.fixture
def own_queues(settings):
    """Queues of the test's own for the workers and beats it starts: the session's worker
    (``celery_worker``), once an earlier test in the same process started it, consumes the run's
    queues and took some of their tasks (CI: a progress task, a beat's scheduled runs). Changed
    through the ``settings`` fixture: a change made beside its overrides was lost with them."""
    before = dict(settings.TASK_QUEUES)
    queues = use_queues(f"{before['default']}-{uuid.uuid4().hex[:6]}", target=settings)
    yield queues
    # The names as they were: on SQLite they are the plain kinds, which use_queues does not make.
    route_to(before, target=settings)
    delete_queues(*queues.values())


def delete_queues(*names: str) -> None:
    """Remove queues a test run made from the broker (RabbitMQ keeps a queue until it is deleted)."""
    from loyalty_site.celery import app

    try:
        with app.connection_for_write() as conn:
            channel = conn.default_channel
            for name in names:
                channel.queue_delete(name)
    except Exception:  # noqa: BLE001  a broker gone at the end of the run leaves nothing to clean
        pass


class WorkerHandle:
    """A real ``celery worker`` process, consuming this run's queue, on the test database."""

    def __init__(self, process, mail_dir: Path, log_path: Path):
        self.process, self.mail_dir, self.log_path = process, mail_dir, log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, predicate, timeout: float = 30, what: str = "the worker"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited:\n{self.log()}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; worker log:\n{self.log()[-4000:]}")

    def wait_for_email(self, predicate, timeout: float = 30) -> str:
        def find():
            for path in sorted(self.mail_dir.glob("*.log")):
                text = path.read_text(errors="replace")
                if predicate(text):
                    return text
            return None

        return self.wait_for(find, timeout, "an email from the worker")


def start_worker(log_path: Path, *, queue: str, extra_env: dict | None = None, include: str = "",
                 queues: str = "", threads: int = 0) -> subprocess.Popen:
    """A real ``celery worker`` process on the test database, consuming ``queue``: one task at a
    time, or ``threads`` at once."""
    from django.db import connection

    database_url = settings.DATABASE_URL.rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(DATABASE_URL=database_url, EMAIL_HOST="", CELERY_QUEUE=queue, CONN_MAX_AGE="0", **(extra_env or {}))
    cache = settings.CACHES["default"]
    if cache["BACKEND"].endswith("RedisCache"):  # this test process's own cache: changes reach the worker
        env["CACHE_URL"] = cache["LOCATION"]
    celery = Path(sys.executable).with_name("celery")
    with open(log_path, "a") as log:
        return subprocess.Popen(
            [str(celery), "-A", "loyalty_site", "worker", "--loglevel=INFO",
             *(["--pool=threads", f"--concurrency={threads}"] if threads else ["--pool=solo"]),
             "-Q", queues or queue, "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--hostname", f"tests-{uuid.uuid4().hex[:6]}@%h", *(["--include", include] if include else [])],
            cwd=Path(__file__).resolve().parent.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
        )


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    base = tmp_path_factory.mktemp("celery-worker")
    mail_dir = base / "mail"
    mail_dir.mkdir()
    log_path = base / "worker.log"
    # The points engine's work and the rest; messages and webhooks only where a test is about them.
    queues = ",".join(settings.TASK_QUEUES[kind] for kind in ("default", "ledger", "analytics"))
    process = start_worker(log_path, queue=settings.CELERY_TASK_DEFAULT_QUEUE, queues=queues,
                           extra_env={"EMAIL_FILE_PATH": str(mail_dir)})
    handle = WorkerHandle(process, mail_dir, log_path)
    try:
        handle.wait_for(lambda: " ready." in handle.log(), timeout=60, what="the worker to start")
        yield handle
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def eager_tasks():
    """Tasks run inline when queued, whatever the broker: for tests about what queues a task,
    not about the worker (those use ``celery_worker``). The code that asks sees it too."""
    from loyalty_site.celery import tasks_inline

    with tasks_inline():
        yield


@pytest.fixture(scope="session", autouse=True)
def _messages_through_the_outbox(django_test_environment):
    """Django's test set-up sends mail straight to its memory backend; here, as in production,
    mail goes through the outbox, and what finally delivers it is the memory backend (mail.outbox)
    and, for SMS, messaging.sms.outbox."""
    settings.EMAIL_BACKEND = "messaging.backends.OutboxEmailBackend"
    settings.EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SMS_BACKEND = "messaging.sms.MemoryBackend"


class SentMail:
    """What the program sent, as ``mailoutbox`` gives it. Reading it first sends what waits in
    the outbox, as the worker does after commit (a test's transaction never commits, and tests
    on PostgreSQL queue to a broker no worker reads): the same claim, rendering and delivery."""

    def _sent(self) -> list:
        from django.core import mail
        from django.utils import timezone

        from messaging.models import Message, MessageStatus
        from messaging.services import messages_send

        due = Message.objects.filter(status=MessageStatus.QUEUED, send_after__lte=timezone.now())
        messages_send(message_ids=list(due.order_by("-priority", "id").values_list("pk", flat=True)))
        return mail.outbox

    def __len__(self):
        return len(self._sent())

    def __getitem__(self, index):
        return self._sent()[index]

    def __iter__(self):
        return iter(self._sent())

    def __eq__(self, other):
        return self._sent() == other

    def __bool__(self):
        return bool(self._sent())


@pytest.fixture
def mailoutbox(_dj_autoclear_mailbox):
    return SentMail()


@pytest.fixture
def sms_outbox(mailoutbox):
    """The SMS sent (reading it sends what waits, like ``mailoutbox``)."""
    from messaging import sms

    class Texts(SentMail):
        def _sent(self):
            super()._sent()
            return sms.outbox

    sms.outbox.clear()
    yield Texts()
    sms.outbox.clear()


@pytest.fixture(autouse=True)
def _fresh_program():
    # Each process keeps the program's rules, its keys, open referrals... until they change; a test
    # starts from what is in its own database.
    from core.process_cache import forget_all
    from rewards.reactions import progress_checks

    forget_all()
    yield
    forget_all()
    progress_checks.flush()  # a test's progress checks are sent before the next test starts
