from django import template

from rewards.words import entry_words

register = template.Library()


@register.filter
def entry(description: str) -> str:
    """``{{ entry.description|entry }}``: a ledger entry's description in the reader's language."""
    return entry_words(description or "")
