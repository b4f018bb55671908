"""A saved session is untrusted input: anyone can hand `open` or `export` a file. Every table
and metadata value the readers use is checked here for its presence, its type and its range,
so what passes cannot make a reader, the export or the interface fail later; what does not
pass raises Bad with a few words saying what is wrong, which `bad` turns into the one line
the user reads, with the file's name.

Pure: plain values and DataFrames in, checked ones out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from syscall_tables import canonical_arch
from tracing.boundary.untrusted_files import Refused
from tracing.errors import UserError
from tracing.model.stats import HIST_BUCKETS, bucket_of

INT64 = (-(1 << 63), (1 << 63) - 1)
INT32 = (-(1 << 31), (1 << 31) - 1)
ID32 = (0, (1 << 31) - 1)  # pids, tids, syscall numbers: int32 in Parquet
NATURAL = (0, (1 << 63) - 1)
# Times: monotonic ns up to 2**62 and wall times up to 4.6e9 s (the year 2115), so that a
# time plus the session's offset from the wall clock still fits an int64.
TIME = (0, 1 << 62)
MAX_WALL_S = 4.6e9
_HIST_DTYPE = np.dtype("<u8")
MAX_DETAIL = 160  # characters of a library's error message kept in ours


class Bad(Exception):
    """What is wrong with a session, in a few words."""


@dataclass(frozen=True, slots=True)
class Int:
    low: int
    high: int
    default: int | None = None  # what NULL becomes; None: NULL stays None (exit codes)
    required: bool = False  # NULL is an error


@dataclass(frozen=True, slots=True)
class Text:
    pass


Kind = Int | Text
TEXT = Text()


def ints(low_high: tuple[int, int], default: int | None = 0, required: bool = False) -> Int:
    return Int(low_high[0], low_high[1], default, required)


def one_line(err: BaseException | str) -> str:
    """A library's error message as one short line."""
    text = " ".join(str(err).split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def _shown(value: Any) -> str:
    return one_line(repr(value)[:40])


def _int_column(values: pd.Series, kind: Int, where: str) -> pd.Series:
    if values.dtype.kind in "iub":
        array = values.to_numpy()
        if values.dtype.kind == "u" and len(array) and int(array.max()) > kind.high:
            raise Bad(f"{where} holds {int(array.max())}, out of range")
        if values.dtype.kind == "b":
            raise Bad(f"{where} holds true/false where a whole number belongs")
        array = array.astype(np.int64)
        bad = (array < kind.low) | (array > kind.high)
        if bad.any():
            raise Bad(f"{where} holds {int(array[bad][0])}, out of range")
        return pd.Series(array, index=values.index, dtype=np.int64)
    out = [_one_int(v, kind, where) for v in values]
    if kind.default is None:
        return pd.Series(out, index=values.index, dtype=object)
    return pd.Series(out, index=values.index, dtype=np.int64)


def _one_int(value: Any, kind: Int, where: str) -> int | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        if kind.required:
            raise Bad(f"{where} is empty where a number belongs")
        return kind.default
    if isinstance(value, (bool, np.bool_)):
        raise Bad(f"{where} holds true/false where a whole number belongs")
    if isinstance(value, (float, np.floating)) and value.is_integer():
        value = int(value)
    if not isinstance(value, (int, np.integer)):
        raise Bad(f"{where} holds {_shown(value)} where a whole number belongs")
    if not kind.low <= int(value) <= kind.high:
        raise Bad(f"{where} holds {int(value)}, out of range")
    return int(value)


def _text_column(values: pd.Series, where: str) -> list[str]:
    out = []
    for v in values:
        if isinstance(v, str):
            out.append(v)
        elif v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            out.append("")
        else:
            raise Bad(f"{where} holds {_shown(v)} where text belongs")
    return out


def typed(frame: pd.DataFrame, table: str, columns: Mapping[str, Kind]) -> pd.DataFrame:
    """frame with `columns` checked and converted (ints to int64, or object ints and None
    where NULL stays None; texts to str with "" for NULL); other columns as they are."""
    out = frame.copy()
    for name, kind in columns.items():
        if name not in frame.columns:
            raise Bad(f"its {table} table has no {name} column")
        where = f"its {table} table's {name} column"
        if isinstance(kind, Text):
            out[name] = pd.Series(_text_column(frame[name], where), index=frame.index,
                                  dtype=object)
        else:
            out[name] = _int_column(frame[name], kind, where)
    return out


def hist_blob(blob: Any, table: str) -> tuple[tuple[int, int], ...]:
    """A journal's histogram: little-endian u64 (bucket, count) pairs."""
    if blob is None or (isinstance(blob, float) and math.isnan(blob)):
        return ()
    if not isinstance(blob, bytes):
        raise Bad(f"its {table} table's hist column holds {_shown(blob)} where a histogram "
                  "belongs")
    if len(blob) % (2 * _HIST_DTYPE.itemsize):
        raise Bad(f"its {table} table holds a histogram of {len(blob)} bytes, not whole "
                  "(bucket, count) pairs")
    pairs = np.frombuffer(blob, dtype=_HIST_DTYPE).reshape(-1, 2)
    return _checked_hist(pairs[:, 0], pairs[:, 1], table)


def _checked_hist(buckets: Any, counts: Any, table: str) -> tuple[tuple[int, int], ...]:
    buckets, counts = np.asarray(buckets), np.asarray(counts)
    if len(buckets) and (buckets.min() < 0 or buckets.max() >= HIST_BUCKETS):
        raise Bad(f"its {table} table holds a histogram bucket out of range")
    if len(counts) and (counts.min() < 0 or counts.max() > NATURAL[1]):
        raise Bad(f"its {table} table holds a histogram count out of range")
    return tuple(zip(buckets.tolist(), counts.tolist(), strict=True))


def hist_lists(lows: Any, counts: Any, table: str) -> tuple[tuple[int, int], ...]:
    """A Parquet histogram: the buckets' lower bounds (ns) and counts, two lists."""
    if _missing(lows) or _missing(counts):
        return ()
    low_values, count_values = _int_list(lows, table), _int_list(counts, table)
    if len(low_values) != len(count_values):
        raise Bad(f"its {table} table holds a histogram with {len(low_values)} bounds and "
                  f"{len(count_values)} counts")
    if any(v < 0 for v in low_values):
        raise Bad(f"its {table} table holds a negative histogram bound")
    buckets = [bucket_of(v) for v in low_values]
    return _checked_hist(buckets, count_values, table)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _int_list(value: Any, table: str) -> list[int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (Iterable, np.ndarray)):
        raise Bad(f"its {table} table holds {_shown(value)} where a list of numbers belongs")
    kind = Int(*INT64, required=True)
    # required: never None
    return [cast(int, _one_int(v, kind, f"its {table} table's histogram")) for v in value]


def text_list(value: Any, where: str) -> tuple[str, ...]:
    """A list of texts: a JSON text (journals) or a list (Parquet); NULL is empty."""
    if _missing(value):
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise Bad(f"{where} holds text that is not JSON") from None
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (Iterable, np.ndarray)):
        raise Bad(f"{where} holds {_shown(value)} where a list of texts belongs")
    items = list(value)
    if not all(isinstance(v, str) for v in items):
        raise Bad(f"{where} holds a list with something other than text in it")
    return tuple(items)


# -- metadata -------------------------------------------------------------------------------

def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v) and 0 <= v < MAX_WALL_S


def _is_texts(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(t, str) for t in v)


def _is_counts(v: Any) -> bool:
    return isinstance(v, dict) and all(_is_int(c) and NATURAL[0] <= c <= NATURAL[1]
                                       for c in v.values())


def _is_probes(v: Any) -> bool:
    return isinstance(v, dict) and all(
        isinstance(k, str) and k.isdigit() and int(k) <= ID32[1] and isinstance(name, str)
        for k, name in v.items())


def _in(low_high: tuple[int, int]) -> Any:
    return lambda v: _is_int(v) and low_high[0] <= v <= low_high[1]


def _optional(test: Any) -> Any:
    return lambda v: v is None or test(v)


def _is_arch(v: Any) -> bool:
    # Every reader names calls with this architecture's tables: one it has none for (or
    # null) would fail deep inside the interface or the export instead of here.
    try:
        return isinstance(v, str) and bool(canonical_arch(v))
    except ValueError:
        return False


# key -> (test, what belongs there): the values the readers use.
META_RULES: dict[str, tuple[Any, str]] = {
    "schema_version": (_in((1, 1 << 31)), "a schema number"),
    "start_wall_time": (_is_number, "a time in seconds"),
    "end_wall_time": (_optional(_is_number), "a time in seconds"),
    "start_ts_ns": (_in(TIME), "a time in ns"),
    "end_ts_ns": (_in(TIME), "a time in ns"),
    "exit_code": (_optional(_in(INT32)), "an exit code"),
    "exit_signal": (_optional(_in(INT32)), "a signal number"),
    "sample_hz": (_optional(_in(INT32)), "a sample rate"),
    "tcp_monitored": (_optional(lambda v: isinstance(v, bool)), "true or false"),
    "targets": (_optional(_is_texts), "a list of texts"),
    "drops": (_optional(_is_counts), "counts by name"),
    "probes": (_optional(_is_probes), "probe names by number"),
    "arch": (_is_arch, "the name of an architecture sikte-tui has syscall tables for"),
    "state": (_optional(lambda v: isinstance(v, str)), "text"),
}


def check_meta(meta: Any, newest: int) -> dict[str, Any]:
    """Metadata whose values have the types the readers use; Bad otherwise. `newest`: the
    newest schema this sikte-tui reads."""
    if not isinstance(meta, dict):
        raise Bad(f"its metadata is {type(meta).__name__}, not an object of named values")
    for key, (test, what) in META_RULES.items():
        if key in meta and not test(meta[key]):
            raise Bad(f"its metadata's {key} is {_shown(meta[key])} where {what} belongs")
    if "arch" in meta:  # the canonical name, so two sessions' machines compare equal
        meta["arch"] = canonical_arch(meta["arch"])
    version = meta.get("schema_version", 1)
    if version > newest:
        raise Bad(f"it was written by a newer sikte-tui (session schema {version}, this one "
                  f"reads up to {newest}); upgrade sikte-tui to read it")
    return meta


def check_stacks(samples: pd.DataFrame) -> None:
    """Bad when a stack's frames, modules and kernel frame count do not agree."""
    for frames, modules, kernel in zip(samples["frames"], samples["modules"],
                                       samples["kernel_frames"], strict=True):
        if len(frames) != len(modules) or not 0 <= kernel <= len(frames):
            raise Bad("it has a stack whose frames, modules and kernel frames do not agree")


def texts(frame: pd.DataFrame, column: str) -> list[str]:
    """A text column, "" where missing (or the whole column, from an older session)."""
    if column not in frame:
        return [""] * len(frame)
    return [v if isinstance(v, str) else "" for v in frame[column]]


# -- what the user reads ----------------------------------------------------------------------

def refused(path: Path | str, why: Refused) -> UserError:
    """A file the untrusted-file checks would not open (a link, a FIFO, too big...)."""
    return UserError(f"{path} {why}; a session is a journal file (.sikte.db) or a Parquet "
                     "session directory")


def bad(path: Path | str, why: Bad | str) -> UserError:
    """A session whose contents did not pass the checks above."""
    return UserError(f"{path} is not a readable sikte-tui session: {why}")
