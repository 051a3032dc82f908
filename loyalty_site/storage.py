"""Where uploads live. Public media (reward pictures, badge images) sit in ``MEDIA_ROOT`` and may be
served by any web server. Members' uploads (review photos, avatars) sit in private storage,
``PRIVATE_MEDIA_ROOT``, which no web server serves: the view at ``/media/private/<name>`` checks
who may see each file (``community.views.private_media``). Their names are random, so a URL
cannot be guessed from another one.
"""

import secrets
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.utils.functional import cached_property


class PrivateStorage(FileSystemStorage):
    @cached_property
    def base_location(self):
        return self._value_or_setting(self._location, settings.PRIVATE_MEDIA_ROOT)

    @cached_property
    def base_url(self):
        return "/media/private/"


def private_storage():
    return storages["private"]


def _random_name(folder: str, filename: str) -> str:
    suffix = PurePosixPath(filename).suffix.lower()[:5]
    return f"{folder}/{secrets.token_urlsafe(18)}{suffix}"


def review_photo_path(instance, filename: str) -> str:
    return _random_name("reviews", filename)


def avatar_path(instance, filename: str) -> str:
    return _random_name("avatars", filename)
