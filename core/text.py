"""Checks on text from outside that more than one app needs, each written once as a regular
expression that the OpenAPI schema publishes as it is (so that what the schema allows, the API
accepts, and the other way round)."""

import re

# Not in an identifier (an external_id, order id, SKU, event id): whitespace of any kind, the URL
# delimiters / ? #, control characters (NUL among them), the soft hyphen, zero-width and
# direction marks (the right-to-left override), byte order marks, interlinear annotation,
# private-use characters and lone surrogates (refused apart: a schema pattern cannot name them).
# They make two ids look alike, reorder the text around them, or cannot be stored (PostgreSQL
# refuses NUL).
_NOT_IN_IDS = (
    r" \t\n\v\f\r/?#\x00-\x1f\x7f-\xa0\xad\u0600-\u0605\u061c\u06dd\u070f\u1680\u180e\u2000-\u200f"
    r"\u2028-\u202f\u205f-\u206f\u3000\ufeff\ufff9-\ufffb\ue000-\uf8ff"
)
IDENTIFIER_PATTERN = f"^[^{_NOT_IN_IDS}]{{1,100}}$"
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
_SURROGATE = re.compile("[\ud800-\udfff]")
# A numeric id sent as a JSON number is read as its digits.
MAX_INTEGER_ID = 2**63 - 1
IDENTIFIER_RULE = "1 to 100 characters without spaces, '/', '?', '#' or invisible characters"


# A sum of money as a string: digits, and at most three decimals (the currency decides how many it
# really has); no sign, exponent or spaces.
# A TCP port, 1 to 65535, without leading zeros (for URL and origin patterns in the schema).
PORT_PATTERN = r"([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
MONEY_PATTERN = r"^[0-9]{1,11}([.][0-9]{1,3})?$"
MONEY = re.compile(MONEY_PATTERN)
POSITIVE_MONEY_PATTERN = r"^(?=[0.]*[1-9])[0-9]{1,11}([.][0-9]{1,3})?$"


def is_identifier(value) -> bool:
    return isinstance(value, str) and _IDENTIFIER.match(value) is not None and not _SURROGATE.search(value)


def has_nul(value: str) -> bool:
    return "\x00" in value
