"""What a web origin is, written one way: the form browsers send in ``Origin`` (lower-case scheme,
the host in ASCII (IDNA), the port only when it is not the scheme's default)."""

import re
from urllib.parse import urlsplit

from core.text import PORT_PATTERN

_DEFAULT_PORTS = {"https": 443, "http": 80}
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# What the API accepts and the schema publishes: https with an ASCII host (an international one in its
# xn-- form, as browsers send it), or http on this machine.
ORIGIN_PATTERN = (rf"^(https://{_LABEL}(?:\.{_LABEL})*|http://(?:localhost|127\.0\.0\.1|\[::1\]))"
                  rf"(?::{PORT_PATTERN})?/?$")
ORIGIN = re.compile(ORIGIN_PATTERN)


def origin_of(url: str) -> str:
    """The origin of an absolute http(s) URL, or "" for anything else."""
    try:
        parts = urlsplit((url or "").strip())
        port = parts.port
        host = (parts.hostname or "").encode("idna").decode("ascii").lower()
    except (ValueError, UnicodeError):
        return ""
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return ""
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" + (f":{port}" if port and port != _DEFAULT_PORTS[scheme] else "")
