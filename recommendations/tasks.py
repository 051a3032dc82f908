"""Scheduled work of recommendations. Safe to run twice: each run replaces every row."""

from celery import shared_task

from recommendations import services


@shared_task(name="recommendations.nightly")
def nightly() -> str:
    result = services.recommendations_compute()
    return f"{result.orders} orders, {result.products} products, {result.pairs} pairs in {result.seconds} s"
