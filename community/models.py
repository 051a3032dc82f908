"""Community: members' public profiles and staff spotlights (reviews, questions and photos join later)."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Member


class PublicProfile(models.Model):
    """What a member chose to show others. Nothing about a member appears in public without it."""

    member = models.OneToOneField(Member, on_delete=models.CASCADE, primary_key=True, related_name="public_profile")
    is_public = models.BooleanField(default=False)
    display_name = models.CharField(max_length=40, blank=True)
    avatar = models.ImageField(upload_to="avatars/", blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["member"], condition=models.Q(is_public=True), name="profile_public")]

    def __str__(self):
        return self.display_name or f"Member #{self.member_id}"


class Spotlight(models.Model):
    """A member staff chose to feature on the community page (shown only if their profile is public)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="spotlights")
    headline = models.CharField(max_length=120)
    text = models.TextField(blank=True)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-starts_at", "-id"]

    def __str__(self):
        return self.headline
