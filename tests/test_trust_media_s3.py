"""Members' uploads on S3-compatible object storage (moto's S3 server on loopback, spoken to over
real HTTP by django-storages): private objects, reached only through the checking view, which
redirects those allowed to a signed URL that the bucket honours."""

import urllib.error
import urllib.request

import pytest
from django.test import Client

from community import services
from community.services import ReviewInput
from tests import images

pytestmark = pytest.mark.django_db

BUCKET = "loyalty-test"


@pytest.fixture
def s3(settings):
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                 aws_secret_access_key="test").create_bucket(Bucket=BUCKET)
    common = {"bucket_name": BUCKET, "endpoint_url": endpoint, "region_name": "us-east-1", "access_key": "test",
              "secret_key": "test", "addressing_style": "path", "file_overwrite": False}
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage",
                    "OPTIONS": {**common, "location": "public", "querystring_auth": False}},
        "private": {"BACKEND": "core.storage.PrivateS3Storage",
                    "OPTIONS": {**common, "location": "private", "querystring_auth": True, "default_acl": "private",
                                "querystring_expire": 60}},
    }
    yield endpoint
    server.stop()


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def test_a_pending_photo_lives_in_the_bucket_and_only_its_author_gets_a_signed_link(s3, alice, bob, tea_shop):
    kettle, _ = services.product_upsert(partner=tea_shop, sku="KETTLE-1", name="Glass kettle")
    review = services.review_submit(member=alice, product=kettle,
                                    data=ReviewInput(5, "Lovely", "Boils fast and looks great on the table."),
                                    photos=[images.photo("kettle.jpg")])
    photo = review.photos.get()
    url = photo.image.url
    assert url.startswith("/media/private/reviews/")
    # The object is in the bucket, under private/, and the bucket refuses it without a signature.
    assert fetch(f"{s3}/{BUCKET}/private/{photo.image.name}")[0] == 403
    assert Client().get(url).status_code == 404
    other = Client()
    other.force_login(bob.user)
    assert other.get(url).status_code == 404
    mine = Client()
    mine.force_login(alice.user)
    answer = mine.get(url)
    assert answer.status_code == 302
    assert answer["Location"].startswith(f"{s3}/{BUCKET}/private/reviews/")
    assert "Signature=" in answer["Location"] or "X-Amz-Signature=" in answer["Location"]
    status, body = fetch(answer["Location"])
    assert (status, body[:3]) == (200, b"\xff\xd8\xff")
