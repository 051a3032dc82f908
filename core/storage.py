"""Where uploads live. Public media (reward pictures, badge images) sit in the default storage and
may be served by any web server or bucket. Members' uploads (review photos, avatars) sit in private
storage, which nothing serves directly: every URL of theirs is ``/media/private/<name>``, a view
that checks who may see the file (``community.views.private_media``) and then streams it (local
disk) or redirects to a short-lived signed URL (S3). Their names are random, so a URL cannot be
guessed from another one.

Local disk by default (``MEDIA_ROOT``, ``PRIVATE_MEDIA_ROOT``); any S3-compatible object store with
``S3_BUCKET`` (see the README), through django-storages.
"""

import secrets
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.core.signals import setting_changed
from django.utils.functional import LazyObject, cached_property, empty

PRIVATE_URL = "/media/private/"


class PrivateStorage(FileSystemStorage):
    @cached_property
    def base_location(self):
        return self._value_or_setting(self._location, settings.PRIVATE_MEDIA_ROOT)

    @cached_property
    def base_url(self):
        return PRIVATE_URL


try:
    from storages.backends.s3 import S3Storage
except ImportError:  # django-storages[s3] is only needed with S3_BUCKET
    S3Storage = None

if S3Storage is not None:
    class PrivateS3Storage(S3Storage):
        """Private objects in the bucket: their URL is the checking view; it asks for a signed one."""

        def url(self, name, parameters=None, expire=None, http_method=None):
            return f"{PRIVATE_URL}{name}"

        def signed_url(self, name: str) -> str:
            return super().url(name)


class _PrivateMedia(LazyObject):
    # A model field keeps the storage object it was given when the class was made; this one looks
    # up storages["private"] when first used, and again after the STORAGES setting changes.
    def _setup(self):
        self._wrapped = storages["private"]


_private = _PrivateMedia()


def _forget(*, setting, **kwargs):
    if setting == "STORAGES":
        _private._wrapped = empty


setting_changed.connect(_forget)


def private_storage():
    return _private


def _random_name(folder: str, filename: str) -> str:
    suffix = PurePosixPath(filename).suffix.lower()[:5]
    return f"{folder}/{secrets.token_urlsafe(18)}{suffix}"


def review_photo_path(instance, filename: str) -> str:
    return _random_name("reviews", filename)


def avatar_path(instance, filename: str) -> str:
    return _random_name("avatars", filename)
