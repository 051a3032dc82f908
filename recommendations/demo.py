"""Demo recommendations for ``seed_demo``: last night's run, done now, so that product pages and the
dashboard show them at once."""

import random

from recommendations.models import ProductStats
from recommendations.services import recommendations_compute


def seed(*, rng: random.Random, stdout, context: dict) -> dict:
    if not ProductStats.objects.exists():
        recommendations_compute()
    return {}
