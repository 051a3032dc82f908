"""Rates such as ``600/min``: how API rate limits are written in settings and on keys."""

import re
from dataclasses import dataclass

_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
            "d": 86400, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class Rate:
    calls: int
    seconds: int

    def __str__(self) -> str:
        name = {1: "sec", 60: "min", 3600: "hour", 86400: "day"}[self.seconds]
        return f"{self.calls}/{name}"


def parse_rate(text: str) -> Rate:
    """``"600/min"`` -> ``Rate(600, 60)``; ValueError for anything else."""
    match = _RATE.match((text or "").lower())
    if not match or match.group(2) not in _PERIODS or int(match.group(1)) < 1:
        raise ValueError(f"{text!r} is not a rate; write it like 600/min (per sec, min, hour or day).")
    return Rate(int(match.group(1)), _PERIODS[match.group(2)])
