"""The connections view's filter language
(tracing.query.connection_filter.parse_connection_filter): every field valid and invalid,
negation, "either" fields, exactly."""

from __future__ import annotations

import dataclasses

import pytest

from tracing.model.connections import INBOUND, OUTBOUND, Connection
from tracing.query.connection_filter import (
    CONNECTION_HELP,
    FAILURES_ONLY,
    ConnectionFilter,
    parse_connection_filter,
)
from tracing.query.terms import FilterError, Term

FIELDS = "port, sport, dport, addr, container, state, dir, result, pid, tid, comm, duration"
WEB_ID = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4"
MS = 1_000_000
NOW = 10_000 * MS

# An outbound connection from 10.0.0.5:41000 to 93.184.216.34:443, by curl in container
# "web", refused after 2 ms; and variations of it.
CONN = Connection(
    conn_id=1, ts_ns=NOW - 500 * MS, pid=42, tid=43, comm="curl", cgroup_id=7, family=4,
    saddr="10.0.0.5", sport=41000, daddr="93.184.216.34", dport=443, direction=OUTBOUND,
    state="CLOSE", end_ts_ns=NOW - 498 * MS, result="refused", error="ECONNREFUSED",
    cgroup_path=f"/system.slice/docker-{WEB_ID}.scope", container_id=WEB_ID,
    container_name="web", container_runtime="docker")
OPEN = dataclasses.replace(CONN, state="ESTABLISHED", end_ts_ns=0, result="", error="")
INBOUND_V6 = dataclasses.replace(
    CONN, family=6, saddr="::1", sport=8080, daddr="0:0:0:0:0:0:0:1", dport=51000,
    direction=INBOUND, comm="python3", state="ESTABLISHED", end_ts_ns=0, result="", error="",
    cgroup_path="", container_id="", container_name="", container_runtime="")
UNNAMED = dataclasses.replace(CONN, container_name="")


def match(text: str, conn: Connection = CONN, now_ns: int = NOW) -> bool:
    return parse_connection_filter(text).matches(conn, now_ns)


def parse_error(text: str) -> FilterError:
    with pytest.raises(FilterError) as info:
        parse_connection_filter(text)
    return info.value


# -- empty -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "  ", "\t\n"])
def test_empty_text_matches_everything(text: str) -> None:
    f = parse_connection_filter(text)
    assert f.is_empty and f.text == text
    assert f.matches(CONN, NOW) and f.matches(INBOUND_V6, NOW)


# -- each field --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "conn", "expected"), [
    # port: either end
    ("port=443", CONN, True),
    ("port=41000", CONN, True),
    ("port=80", CONN, False),
    ("port=0443", CONN, True),
    ("port!=443", CONN, False),  # neither end is 443: false, one end is
    ("port!=80", CONN, True),
    ("port<1024", CONN, True),  # the remote 443
    ("port>50000", CONN, False),
    ("port>=41000", CONN, True),
    ("port<=442", CONN, False),
    ("port>442", CONN, True),
    # sport: the local port; dport: the remote port
    ("sport=41000", CONN, True),
    ("sport=443", CONN, False),
    ("sport!=41000", CONN, False),
    ("sport>40000", CONN, True),
    ("dport=443", CONN, True),
    ("dport=41000", CONN, False),
    ("dport<1024", CONN, True),
    ("dport>=444", CONN, False),
    ("sport=8080", INBOUND_V6, True),
    ("dport=51000", INBOUND_V6, True),
])
def test_ports(text: str, conn: Connection, expected: bool) -> None:
    assert match(text, conn) is expected


@pytest.mark.parametrize(("text", "conn", "expected"), [
    ("addr=10.0.0.5", CONN, True),  # local
    ("addr=93.184.216.34", CONN, True),  # remote
    ("addr=93.184.216.3", CONN, False),
    ("addr=10.0.0.0/8", CONN, True),
    ("addr=10.0.0.5/32", CONN, True),
    ("addr=10.1.0.0/16", CONN, False),
    ("addr=93.184.0.0/16", CONN, True),
    ("addr=10.0.0.9/8", CONN, True),  # host bits are fine: the network is meant
    ("addr!=10.0.0.5", CONN, False),  # neither address is: false
    ("addr!=10.0.0.6", CONN, True),
    ("addr=::1", INBOUND_V6, True),
    ("addr=0::1", INBOUND_V6, True),  # however it is written
    ("addr=::2", INBOUND_V6, False),
    ("addr=::/0", INBOUND_V6, True),
    ("addr=0.0.0.0/0", INBOUND_V6, False),  # IPv4 networks hold no IPv6 addresses
    ("addr=::1", CONN, False),
    (r"addr~^93\.184", CONN, True),
    (r"addr~^10\.", CONN, True),
    ("addr~^192", CONN, False),
    ("addr~^0:0", INBOUND_V6, True),
    ("addr~F", dataclasses.replace(INBOUND_V6, daddr="fe80::1"), True),  # any case
])
def test_addresses(text: str, conn: Connection, expected: bool) -> None:
    assert match(text, conn) is expected


@pytest.mark.parametrize(("text", "conn", "expected"), [
    ("container=web", CONN, True),
    ("container=we", CONN, False),  # names are exact
    ("container=WEB", CONN, False),
    ("container=3f2a9c", CONN, True),  # ids by a prefix
    ("container=3F2A9C", CONN, True),
    (f"container={WEB_ID}", CONN, True),
    ("container=3f2b", CONN, False),
    ("container=3f2a9c", UNNAMED, True),
    ("container=web", UNNAMED, False),
    ("container=web", INBOUND_V6, False),
    ("container!=web", CONN, False),
    ("container!=db", CONN, True),
    ("container!=web", INBOUND_V6, True),
    ("container~^w", CONN, True),
    ("container~^3f2a", UNNAMED, True),
    ("container~.", INBOUND_V6, False),  # outside containers: nothing to find
    ("!container~.", INBOUND_V6, True),
])
def test_containers(text: str, conn: Connection, expected: bool) -> None:
    assert match(text, conn) is expected


@pytest.mark.parametrize(("text", "conn", "expected"), [
    ("state=CLOSE", CONN, True),
    ("state=close", CONN, True),
    ("state=established", CONN, False),
    ("state=established", OPEN, True),
    ("state!=established", OPEN, False),
    ("state=time-wait", dataclasses.replace(CONN, state="TIME_WAIT"), True),
    ("state=Time_Wait", dataclasses.replace(CONN, state="TIME_WAIT"), True),
    ("state~WAIT", dataclasses.replace(CONN, state="CLOSE_WAIT"), True),
    ("state~wait", dataclasses.replace(CONN, state="CLOSE_WAIT"), True),
    ("state~^SYN", OPEN, False),
    ("dir=out", CONN, True),
    ("dir=in", CONN, False),
    ("dir=OUT", CONN, True),
    ("dir=outbound", CONN, True),
    ("dir=inbound", INBOUND_V6, True),
    ("dir!=out", CONN, False),
    ("dir!=out", INBOUND_V6, True),
])
def test_state_and_direction(text: str, conn: Connection, expected: bool) -> None:
    assert match(text, conn) is expected


def result_of(result: str, error: str = "") -> Connection:
    return dataclasses.replace(CONN, result=result, error=error)


@pytest.mark.parametrize(("text", "conn", "expected"), [
    ("result=refused", CONN, True),
    ("result=REFUSED", CONN, True),
    ("result=timeout", CONN, False),
    ("result=failed", CONN, True),  # any failure
    ("result=failed", result_of("timeout", "ETIMEDOUT"), True),
    ("result=failed", result_of("failed", "EACCES"), True),
    ("result=failed", result_of("ok"), False),
    ("result=failed", OPEN, False),  # undecided yet
    ("result=ok", result_of("ok"), True),
    ("result=ok", OPEN, False),
    ("result=reset", result_of("reset", "EPIPE"), True),
    ("result=unreachable", result_of("unreachable", "ENETUNREACH"), True),
    ("result=ECONNREFUSED", CONN, True),
    ("result=econnrefused", CONN, True),
    ("result=EPIPE", result_of("reset", "EPIPE"), True),
    ("result=ECONNRESET", result_of("reset", "EPIPE"), False),
    ("result!=refused", CONN, False),
    ("result!=ok", OPEN, True),
])
def test_results(text: str, conn: Connection, expected: bool) -> None:
    assert match(text, conn) is expected


@pytest.mark.parametrize(("text", "expected"), [
    ("pid=42", True),
    ("pid=042", True),
    ("pid=43", False),
    ("pid!=42", False),
    ("pid!=7", True),
    ("tid=43", True),
    ("tid=42", False),
    ('pid="42"', True),
    ("comm=curl", True),
    ("comm=CURL", False),  # case-sensitive, as in the syscall view
    ("comm=cur", False),
    ("comm!=curl", False),
    ("comm~^cu", True),
    ("comm~(?i)^CU", True),
    ("comm~^py", False),
    ("duration=2ms", True),  # ended: 2 ms exactly
    ("duration>1ms", True),
    ("duration>2ms", False),
    ("duration>=2ms", True),
    ("duration<1s", True),
    ("duration!=2ms", False),
    ("duration<=2000000", True),  # ns without a unit
    ("duration>1.5ms", True),
])
def test_process_and_duration(text: str, expected: bool) -> None:
    assert match(text) is expected


def test_duration_of_an_open_connection_grows_with_now() -> None:
    f = parse_connection_filter("duration>1s")
    assert not f.matches(OPEN, NOW)  # 500 ms so far
    assert f.matches(OPEN, NOW + 600 * MS)


@pytest.mark.parametrize(("text", "conn", "expected"), [
    ("curl", CONN, True),
    ("CURL", CONN, True),
    ("url", CONN, True),
    ("93.184", CONN, True),  # the remote endpoint
    (":41000", CONN, True),  # the local endpoint's port
    ("216.34:443", CONN, True),
    ("web", CONN, True),  # the container's name
    ("3f2a9c", UNNAMED, True),  # its id
    ("[::1]:8080", INBOUND_V6, True),
    ("nginx", CONN, False),
    ("refused", CONN, False),  # results are fields, not words
    ('"curl"', CONN, True),
])
def test_bare_words(text: str, conn: Connection, expected: bool) -> None:
    assert match(text, conn) is expected


# -- negation and combination ------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("!curl", False),
    ("!nginx", True),
    ("!port=443", False),
    ("!port=80", True),
    ("!addr=10.0.0.0/8", False),
    ("!dir=in", True),
    ("!result=failed", False),
    ("!state=established", True),
    ("!duration>1s", True),
    ("!container=web", False),
    ("!pid!=42", True),  # not (pid is not 42)
    ("dir=out result=failed curl", True),
    ("dir=out result=failed nginx", False),
    ("DIR=out Port=443", True),  # field names ignore case
])
def test_negation_and_all_terms(text: str, expected: bool) -> None:
    assert match(text) is expected


def test_either_fields_negate_as_neither() -> None:
    # `port!=443` and `!port=443` are one filter: no port 443 at either end.
    for conn in (CONN, INBOUND_V6, dataclasses.replace(CONN, sport=443)):
        assert match("port!=443", conn) == match("!port=443", conn)
        assert match("addr!=10.0.0.5", conn) == match("!addr=10.0.0.5", conn)
        assert match("container!=web", conn) == match("!container=web", conn)


def test_failures_only() -> None:
    assert FAILURES_ONLY == "result=failed"
    assert match(FAILURES_ONLY, CONN) and not match(FAILURES_ONLY, OPEN)


def test_terms_describe_what_was_typed() -> None:
    f = parse_connection_filter('  !port>=1024 comm="my prog" web')
    assert f.terms == (
        Term("port", ">=", "1024", True, 2, "port", test=bool),
        Term("comm", "=", "my prog", False, 14, "comm", test=bool),
        Term("word", "contains", "web", False, 29, "word", test=bool),
    )
    assert isinstance(f, ConnectionFilter) and not f.is_empty


# -- mistakes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "message", "position"), [
    # fields that are not the connections'
    ("p99>1ms", f"unknown field 'p99' at 0: use {FIELDS}", 0),
    ("curl name=read", f"unknown field 'name' at 5: use {FIELDS}", 5),
    ("=443", f"missing field before '=' at 0: use {FIELDS}", 0),
    # operators
    ("addr>10.0.0.1", "bad operator '>' for addr at 0: use =, != or ~", 0),
    ("dir~in", "bad operator '~' for dir at 0: use = or !=", 0),
    ("result~ref", "bad operator '~' for result at 0: use = or !=", 0),
    ("pid>4", "bad operator '>' for pid at 0: use = or !=", 0),
    ("port~44", "bad operator '~' for port at 0: use =, !=, >, >=, < or <=", 0),
    ("state>=CLOSE", "bad operator '>=' for state at 0: use =, != or ~", 0),
    ("container<web", "bad operator '<' for container at 0: use =, != or ~", 0),
    # missing values
    ("port=", "'=' needs a number at 0: e.g. port=443", 0),
    ("x sport=", "'=' needs a number at 2: e.g. sport=8080", 2),
    ("dport<", "'<' needs a number at 0: e.g. dport=443", 0),
    ("addr=", "'=' needs an address at 0: e.g. addr=10.0.0.1", 0),
    ("addr~", r"'~' needs a regex at 0: e.g. addr~^10\.", 0),
    ("container=", "'=' needs a name or id at 0: e.g. container=web", 0),
    ("state=", "'=' needs a state at 0: e.g. state=ESTABLISHED", 0),
    ("dir=", "'=' needs a direction at 0: e.g. dir=out", 0),
    ("result=", "'=' needs a result at 0: e.g. result=refused", 0),
    ("pid=", "'=' needs a number at 0: e.g. pid=42", 0),
    ("comm=", "'=' needs a name at 0: e.g. comm=nginx", 0),
    ("duration>", "'>' needs a duration at 0: e.g. duration>1s", 0),
    # bad values
    ("port=https", "bad port 'https' for port at 0: use a number from 0 to 65535, e.g. "
     "port=443", 0),
    ("port=65536", "bad port '65536' for port at 0: use a number from 0 to 65535, e.g. "
     "port=443", 0),
    ("sport=-1", "bad port '-1' for sport at 0: use a number from 0 to 65535, e.g. "
     "sport=8080", 0),
    ("addr=localhost", "bad address 'localhost' for addr at 0: use an IP address or a "
     "network, e.g. addr=10.0.0.1, addr=10.0.0.0/8, addr=::1", 0),
    ("addr=10.0.0.0/33", "bad address '10.0.0.0/33' for addr at 0: use an IP address or a "
     "network, e.g. addr=10.0.0.1, addr=10.0.0.0/8, addr=::1", 0),
    ("addr~(", "invalid regex '(' for addr at 0: missing ), unterminated subpattern", 0),
    ("container~[", "invalid regex '[' for container at 0: unterminated character set", 0),
    ("state=OPEN", "unknown state 'OPEN' for state at 0: use CLOSE, CLOSE_WAIT, CLOSING, "
     "ESTABLISHED, FIN_WAIT1, FIN_WAIT2, LAST_ACK, LISTEN, NEW_SYN_RECV, SYN_RECV, SYN_SENT, "
     "TIME_WAIT", 0),
    ("dir=up", "bad direction 'up' for dir at 0: use in (accepted) or out (connected)", 0),
    ("result=broken", "bad result 'broken' for result at 0: use ok, refused, timeout, reset, "
     "unreachable, failed or an errno name (ECONNRESET)", 0),
    ("pid=abc", "bad number 'abc' for pid at 0: use a whole number, e.g. pid=42", 0),
    ("duration>1xs", "bad duration '1xs' for duration at 0: use a number with ns, us, ms or "
     "s, e.g. duration>1ms", 0),
    # syntax shared with the syscall view
    ("!", "'!' needs a term after it at 0: e.g. !read", 0),
    ("!!curl", "'!!' at 0: use one '!' to negate a term", 0),
    ('comm="x', 'unterminated quote at 0: add the closing "', 0),
    ('""', 'empty quotes at 0: put a word between them, e.g. "curl"', 0),
])
def test_errors(text: str, message: str, position: int) -> None:
    error = parse_error(text)
    assert (str(error), error.message, error.position) == (message, message, position)


# -- help and consistency ----------------------------------------------------------------------


def test_help_fits_the_help_screen() -> None:
    lines = CONNECTION_HELP.splitlines()
    assert len(lines) <= 20
    assert max(len(line) for line in lines) <= 76


@pytest.mark.parametrize("word", [*FIELDS.split(", "), "!", "Escape", FAILURES_ONLY, "/8"])
def test_help_mentions(word: str) -> None:
    assert word in CONNECTION_HELP
