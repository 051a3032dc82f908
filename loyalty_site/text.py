"""Checks on text from outside that more than one app needs."""

import unicodedata

# Control characters (NUL among them), format characters (zero-width spaces and joiners, the
# right-to-left override), surrogates, private-use and unassigned code points: none belongs in an
# identifier a person reads, and some make two ids look alike or reorder the text around them.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def has_unsafe_characters(value: str) -> bool:
    return any(unicodedata.category(ch) in _UNSAFE_CATEGORIES for ch in value)


def has_nul(value: str) -> bool:
    return "\x00" in value
