"""Capacity arithmetic shared by the entries that raise a limit by a percentage."""

from __future__ import annotations

import math


def raised(current: int, percent: float) -> int:
    """``current`` raised by ``percent``, rounded up, and by at least one."""
    return max(current + 1, math.ceil(current * (1 + percent / 100)))
