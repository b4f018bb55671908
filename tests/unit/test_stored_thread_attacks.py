"""Hand-made journals whose thread counts are out of any real range (red team, issue 16):
`threads_seen` at int64's end made `export` end with an internal error (OverflowError in
pyarrow, adding the main thread). Each must open, or fail in one line with exit 2."""

from __future__ import annotations

from tests.unit.test_session_fuzz import _copy, _sql, base, check_all  # noqa: F401

INT64_MAX = (1 << 63) - 1


def test_thread_counts_at_int64s_end_open_or_fail_in_one_line(base, tmp_path):  # noqa: F811
    cases = {}
    for column in ("threads_seen", "thread_names_dropped"):
        for value in (INT64_MAX, INT64_MAX - 1, 1 << 62, (1 << 62) + 1):
            path = _copy(base["journal"], tmp_path, f"{column}-{value}")
            _sql(path, f"UPDATE processes SET {column} = {value}")
            cases[f"{column}={value}"] = path
    check_all(cases, tmp_path / "out")
