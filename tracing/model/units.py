"""Human units for durations and counts, both ways (shared by record, the TUI and filters)."""

from __future__ import annotations

import math
import re

_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|µs|ms|s)?\s*$")


def parse_duration_ns(text: str, default_unit: str = "ns") -> int:
    """'10ms' -> 10_000_000; raises ValueError naming the accepted units."""
    m = _DURATION_RE.match(text)
    if not m:
        raise ValueError(f"bad duration {text!r}: use a number with ns, us, ms or s (e.g. 10ms)")
    return round(float(m.group(1)) * _DURATION_UNITS[m.group(2) or default_unit])


def parse_offset(text: str) -> float:
    """'12', '12.5', '1:30', '1:30.5', '250ms', '2s' -> seconds from a session's start
    (the window dialog and `sikte-tui diff --window-a` read these). ValueError otherwise,
    and for what is not a finite number of seconds from the start."""
    text = text.strip()
    if not text:
        raise ValueError("empty")
    if ":" in text:
        minutes, _, seconds = text.partition(":")
        value = int(minutes) * 60 + float(seconds)
    else:
        try:
            value = float(text)
        except ValueError:
            value = parse_duration_ns(text) / 1e9
    if not math.isfinite(value):
        raise ValueError(f"not a time: {text!r}")
    return value


_DURATION_SCALES = (("µs", 1e3), ("ms", 1e6), ("s", 1e9))
_COUNT_SCALES = (("k", 1e3), ("M", 1e6), ("G", 1e9))


def _scaled(x: float, scales: tuple[tuple[str, float], ...]) -> str:
    """`x` in the first unit that keeps it under 1000 (else the last): three significant
    digits, whole numbers from 100 on."""
    unit, scale = next(((u, s) for u, s in scales if x / s < 1_000), scales[-1])
    value = x / scale
    return f"{value:.3g}{unit}" if value < 100 else f"{value:.0f}{unit}"


def format_duration(ns: float) -> str:
    """Four significant characters or so: 812ns, 3.4µs, 12ms, 1.25s."""
    return f"{ns:.0f}ns" if ns < 1_000 else _scaled(ns, _DURATION_SCALES)


def format_count(n: float) -> str:
    """1234 -> 1234, 12345 -> 12.3k, 2500000 -> 2.50M."""
    return f"{n:.0f}" if n < 10_000 else _scaled(n, _COUNT_SCALES)


def format_bytes(n: float) -> str:
    """Binary units: 812B, 10.3K, 340M, 2.0G."""
    for unit in ("B", "K", "M", "G"):
        if n < 1024 or unit == "G":
            return f"{n:.0f}{unit}" if unit == "B" or n >= 100 else f"{n:.1f}{unit}"
        n /= 1024
    raise AssertionError("unreachable")


def format_exact_count(n: int) -> str:
    """A count as the tables show it: exact with separators up to ten million, then k/M."""
    return f"{n:,}" if n < 10_000_000 else format_count(n)


def format_elapsed(seconds: float) -> str:
    """A run's length: 0.4s, 12.3s under a minute (a short run is not 00:00), then 01:05,
    then 1:02:03."""
    seconds = max(0.0, seconds)
    if round(seconds, 1) < 60:
        return f"{seconds:.1f}s"
    whole = max(int(seconds), 60)  # 59.96 s is past "59.9s": never back to 00:59
    h, rest = divmod(whole, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


def format_rate(per_s: float) -> str:
    """Calls per second: 0, 0.5, 2.0, 812, 12.3k. A call made every few seconds is not 0."""
    if per_s == 0:
        return "0"
    return f"{per_s:.1f}" if per_s < 10 else format_count(per_s)


def format_id(n: int) -> str:
    """A PID or TID: digits only, as `pid=` takes it (never 22,028)."""
    return str(int(n))
