"""The event selection: parsing `--events` specs, the kernel's bits, the UI's description."""

from __future__ import annotations

import pytest

from tracing.engine.capture_config import config_value
from tracing.model.selection import SEL_FAILED, SEL_SAMPLE, SEL_SLOW, EventSelection


@pytest.mark.parametrize(("spec", "expected"), [
    ("failed", EventSelection(failed=True)),
    ("all", EventSelection(all=True, failed=False)),
    ("none", EventSelection(failed=False, files=False)),
    ("slow:10ms", EventSelection(failed=False, slow_ns=10_000_000)),
    ("sample:100", EventSelection(failed=False, sample_n=100)),
    ("failed,slow:5ms", EventSelection(failed=True, slow_ns=5_000_000)),
    (" failed , sample:3 ", EventSelection(failed=True, sample_n=3)),
    ("slow:1.5s", EventSelection(failed=False, slow_ns=1_500_000_000)),
])
def test_specs_parse(spec, expected):
    assert EventSelection.parse(spec) == expected


def test_none_is_aggregate_only():
    assert EventSelection.parse("none") is EventSelection.none
    assert not EventSelection.none.any
    assert config_value(EventSelection.none) == (0, 0, 0, 0)


@pytest.mark.parametrize(("spec", "message"), [
    ("", "empty selection: use failed, all, none"),
    ("failed,", "empty selection"),
    ("bogus", "unknown term 'bogus': use failed, all, none"),
    ("none,failed", "'none' cannot be combined with other terms"),
    ("slow:0", "slow:0: give a duration above zero"),
    ("slow:fast", "bad duration 'fast'"),
    ("sample:0", "sample:0: give a whole number N above zero"),
    ("sample:x", "sample:x: give a whole number N above zero"),
    ("failed:1", "unknown term 'failed:1'"),
    ("\x1b[31m", "unknown term '\\x1b[31m'"),  # escaped, never raw
])
def test_bad_specs_say_what_is_accepted(spec, message):
    with pytest.raises(ValueError) as err:
        EventSelection.parse(spec)
    assert message in str(err.value)
    assert "\x1b" not in str(err.value)


@pytest.mark.parametrize(("spec", "text"), [
    ("failed", "failed"),
    ("all", "all"),
    ("none", "none"),
    ("failed,slow:10ms", "failed, slower than 10 ms"),
    ("slow:1500us", "slower than 1,500 µs"),
    ("sample:1000", "1 in 1,000"),
    ("failed,slow:2s,sample:7", "failed, slower than 2 s, 1 in 7"),
])
def test_descriptions(spec, text):
    assert EventSelection.parse(spec).describe() == text


def test_the_kernel_config_of_a_selection():
    sel = EventSelection.parse("failed,slow:5ms,sample:9")
    assert sel.bits == SEL_FAILED | SEL_SLOW | SEL_SAMPLE
    assert config_value(sel) == (SEL_FAILED | SEL_SLOW | SEL_SAMPLE, 1, 5_000_000, 9)


def test_nofiles_keeps_events_without_the_descriptor_table() -> None:
    sel = EventSelection.parse("failed,nofiles")
    assert (sel.failed, sel.files, sel.bits) == (True, False, EventSelection().bits)
    assert sel.describe() == "failed, no files"
    assert EventSelection.parse("failed").files is True
    with pytest.raises(ValueError, match="nofiles"):
        EventSelection.parse("nofiles:1")
