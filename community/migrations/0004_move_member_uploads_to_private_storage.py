"""Move review photos and avatars uploaded before private storage existed out of the public media
folder (where any web server would serve them) into private storage. Names stay as they were."""

from django.core.files.storage import default_storage, storages
from django.db import migrations


def move(apps, schema_editor):
    private = storages["private"]
    ReviewPhoto = apps.get_model("community", "ReviewPhoto")
    PublicProfile = apps.get_model("community", "PublicProfile")
    names = set()
    for image, thumbnail in ReviewPhoto.objects.values_list("image", "thumbnail").iterator():
        names.update([image, thumbnail])
    names.update(PublicProfile.objects.exclude(avatar="").values_list("avatar", flat=True))
    for name in sorted(n for n in names if n):
        if private.exists(name) or not default_storage.exists(name):
            continue
        with default_storage.open(name, "rb") as source:
            private.save(name, source)
        default_storage.delete(name)


class Migration(migrations.Migration):
    dependencies = [("community", "0003_private_member_uploads")]
    operations = [migrations.RunPython(move, migrations.RunPython.noop)]
