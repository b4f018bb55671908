"""Many events decoded at once, to exactly the text decode_events gives one at a time.

An export decodes every event of a session, millions of them, and decoding one costs tens of
microseconds of Python. Most events captured nothing (their data is b""), and then each
argument's text is a function of a few registers alone, so:

- an event that captured something is decoded on its own (its text depends on its bytes);
- an argument that is a plain pointer or number is formatted for a whole column at once;
- any other argument, and the result, is decoded once per distinct value of the registers its
  decoder read (recorded while it runs: see _Probe), and that text is shared by every event
  with the same values in them.

The texts may hold what the traced process passed (surrogate-escaped bytes), so the caller's
`text` makes each one safe for an Arrow string column (export_decoded.text).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracing.decode.args import _ADDRESS_NAME, _UNSIGNED, _WORD, CallContext, generic
from tracing.decode.argspec import FD_ARG0, SpecTable, SyscallSpec, abi_table
from tracing.decode.calls import _SPECIAL, HEX_RESULT, call_args, rule_for
from tracing.decode.render import (
    MAX_ERRNO,
    PathNames,
    decode_events,
    result_text,
    syscall_name,
)
from tracing.model.captures import KIND_ARGV, KIND_BUF, KIND_PATH, KIND_SOCKADDR, KIND_STR

Text = Callable[[str | bytes | None], str]
# The slots of a row a decoder can read (every other input is the group's): the six
# registers, the result's int64 bits, and the path id that names args[0]'s descriptor
# (0: fd_names is None).
ARGS = 6
RET = 6
FD_NAME = 7
_POINTER_KINDS = frozenset({KIND_PATH, KIND_STR, KIND_ARGV, KIND_SOCKADDR, KIND_BUF})
_TABLE_MAX = 1 << 20  # distinct values below it are found with a table, not a sort
_SAMPLES = 16  # rows a column format is checked on against the decoder itself
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


class _Probe(CallContext):
    """A CallContext that notes which slots the decoder reads: a text depends on those only
    (the call, its ABI and spec are the same for the whole group, and nothing was captured)."""

    reads: set[int]

    def __getattribute__(self, attr: str) -> Any:
        value = object.__getattribute__(self, attr)
        if attr in ("args", "ret", "fd_names"):
            reads = object.__getattribute__(self, "reads")
            if attr == "args":
                reads.update(range(ARGS))
            elif attr == "ret":
                reads.add(RET)
            else:  # {int32(args[0]): the name of path FD_NAME}, or None where that is 0
                reads.update((FD_NAME, 0) if value is not None else (FD_NAME,))
        return value

    def raw(self, i: int) -> int:
        object.__getattribute__(self, "reads").add(i)
        args = object.__getattribute__(self, "args")
        return int(args[i]) if i < len(args) else 0


class _Group:
    """The events of one (ABI, nr) that captured nothing, and their slots."""

    def __init__(self, name: str, abi: int, spec: SyscallSpec | None, slots: np.ndarray,
                 paths: PathNames | None) -> None:
        self.name, self.abi, self.spec, self.slots, self.paths = name, abi, spec, slots, paths

    def context(self, row: int) -> _Probe:
        s = self.slots[row]
        fd_name = int(s[FD_NAME])
        fd = int(s[0]) & 0xFFFFFFFF
        fd = fd - (1 << 32) if fd & 0x80000000 else fd
        names = {fd: self.paths.name(fd_name)} if fd_name and self.paths is not None else None
        ret = int(s[RET:RET + 1].view(np.int64)[0])
        probe = _Probe(self.name, tuple(int(a) for a in s[:ARGS]), self.abi, {}, self.spec,
                       ret, names)
        probe.reads = set()
        return probe

    def shared(self, part: Callable[[_Probe], str | None], text: Text) -> pa.Array:
        """`part`'s text for every row (null where it is left out), decoded once per
        distinct value of the slots it read."""
        values: list[str | None] = []
        index: dict[str | None, int] = {}
        codes = np.zeros(len(self.slots), dtype=np.int32)

        def solve(rows: np.ndarray, keyed: tuple[int, ...]) -> None:
            if len(keyed) == 1:
                first, inverse = _distinct(self.slots[rows, keyed[0]])
            elif keyed:
                keys = np.ascontiguousarray(self.slots[rows][:, list(keyed)])
                flat = keys.view(np.dtype((np.void, keys.dtype.itemsize * len(keyed))))
                _, first, inverse = np.unique(flat.ravel(), return_index=True,
                                              return_inverse=True)
            else:
                first, inverse = np.zeros(1, np.int64), np.zeros(len(rows), np.int64)
            found = np.empty(len(first), dtype=np.int32)
            wider: dict[tuple[int, ...], list[int]] = {}
            for k, r in enumerate(rows[first].tolist()):
                probe = self.context(r)
                shown = part(probe)
                if probe.reads <= set(keyed):
                    if shown not in index:
                        index[shown] = len(values)
                        values.append(shown)
                    found[k] = index[shown]
                else:
                    found[k] = -1
                    wider.setdefault(tuple(sorted(probe.reads | set(keyed))), []).append(k)
            codes[rows] = found[inverse.reshape(-1)]
            for more, ks in wider.items():
                solve(rows[np.isin(inverse.reshape(-1), ks)], more)

        solve(np.arange(len(self.slots)), ())
        dictionary = pa.array([None if v is None else text(v) for v in values], pa.string())
        return dictionary.take(pa.array(codes))


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a row of each distinct value, each row's distinct value's index): small values
    (descriptors, flags, lengths) by table, others by sorting."""
    if len(values) and int(values.max()) < _TABLE_MAX:
        table = np.zeros(int(values.max()) + 1, dtype=np.int64)
        table[values] = np.arange(len(values))  # any row holding the value will do
        held = np.zeros(len(table), dtype=bool)
        held[values] = True
        index = np.cumsum(held) - 1
        return table[held], index[values]
    _, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def _pointers(values: np.ndarray, zero: bytes = b"NULL") -> pa.Array:
    """pointer(): `NULL` for 0, else `0x7ffd...` (lower-case, no leading zeros); with
    zero=b"0", hex_value()."""
    n = len(values)
    row = np.zeros((n, 18), dtype=np.uint8)
    octets = values.astype(">u8").view(np.uint8).reshape(n, 8)  # most significant first
    row[:, 2::2] = _HEX[octets >> 4]
    row[:, 3::2] = _HEX[octets & 0xF]
    nonzero = row[:, 2:] != ord("0")
    first = np.argmax(nonzero, axis=1)  # the first digit shown, 0..15
    at = np.arange(n)
    row[at, first] = ord("0")
    row[at, first + 1] = ord("x")
    null = values == 0
    row[null, 18 - len(zero):] = np.frombuffer(zero, dtype=np.uint8)
    start = np.where(null, 18 - len(zero), first)
    data = row[np.arange(18)[None, :] >= start[:, None]]
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(18 - start, out=offsets[1:])
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def _decimals(values: np.ndarray, bits: int, signed: bool) -> pa.Array:
    """integer(): the register at the type's width, in decimal (str() of it)."""
    if bits == 32:
        narrow = (values & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        wide = narrow.view(np.int32).astype(np.int64) if signed else narrow.astype(np.int64)
        return _decimal_text(wide.view(np.uint64), wide < 0)
    if not signed:
        return _decimal_text(values, np.zeros(len(values), dtype=bool))
    return _decimal_text(values, values.view(np.int64) < 0)


def _decimal_text(bits: np.ndarray, negative: np.ndarray) -> pa.Array:
    """str() of each uint64 `bits`, read as two's complement int64 where `negative`."""
    n = len(bits)
    magnitude = np.where(negative, ~bits + np.uint64(1), bits)
    width = np.ones(n, dtype=np.int64)
    for k in range(1, 20):
        width += magnitude >= np.uint64(10 ** k)
    most = int(width.max()) if n else 1
    row = np.zeros((n, most + 1), dtype=np.uint8)
    rest = magnitude.copy()
    for j in range(most):
        rest, digit = np.divmod(rest, np.uint64(10))
        row[:, most - j] = digit.astype(np.uint8) + ord("0")
    start = most + 1 - width - negative
    row[np.flatnonzero(negative), start[negative]] = ord("-")
    data = row[np.arange(most + 1)[None, :] >= start[:, None]]
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(most + 1 - start, out=offsets[1:])
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def _column_format(group: _Group, i: int) -> Callable[[np.ndarray], pa.Array] | None:
    """How generic() shows argument i of a call that captured nothing, when that is a plain
    pointer or number of register i alone (a whole column at once); None for the others."""
    spec = group.spec
    if spec is None or group.name in _SPECIAL:
        return None
    probe = group.context(0)
    if rule_for(probe, i) is not None:
        return None
    arg = spec.args[i]
    word = probe.word_bits
    if arg.kind in _POINTER_KINDS:
        return _pointers  # their decoders show the bare pointer when nothing was captured
    if "*" in arg.type or _ADDRESS_NAME.fullmatch(arg.name):
        return _pointers if word == 64 else lambda v: _pointers(v & np.uint64(0xFFFFFFFF))
    if "fd" in arg.name or "fildes" in arg.name or arg.name == "sig" or "umode_t" in arg.type:
        return None  # descriptors (named or not), signals and modes: decoded by value
    bits = word if _WORD.search(arg.type) else 32
    signed = not _UNSIGNED.search(arg.type)
    return lambda v: _decimals(v, bits, signed)


def _arg_column(group: _Group, i: int, text: Text) -> pa.Array:
    """Argument i's text for each row of the group, null where the decoder leaves it out."""
    def part(ctx: _Probe) -> str | None:
        rule = rule_for(ctx, i)
        spec = ctx.spec
        assert spec is not None
        return rule(ctx, i) if rule is not None else generic(ctx, i, spec.args[i])

    shown = _column_format(group, i)
    if shown is not None:
        values = np.ascontiguousarray(group.slots[:, i])
        column = shown(values)
        if _agrees(group, part, column, values):
            return column
    return group.shared(part, text)


def _agrees(group: _Group, part: Callable[[_Probe], str | None], column: pa.Array,
            values: np.ndarray, rows: np.ndarray | None = None) -> bool:
    """Whether the column format gives the decoder's own text on some rows (of `rows`, a
    mask, or all): those of the smallest and largest values, and rows spread over the group.
    (Reads are not compared: a buffer's decoder reads its length even when it shows only
    the pointer.)"""
    where = np.flatnonzero(rows) if rows is not None else np.arange(len(values))
    if not len(where):
        return True
    picked = values[where]
    chosen = {int(where[np.argmin(picked)]), int(where[np.argmax(picked)]),
              *where[np.linspace(0, len(where) - 1, min(_SAMPLES, len(where))).astype(
                  np.int64)].tolist()}
    return all(part(group.context(r)) == column[r].as_py() for r in sorted(chosen))


def _joined(columns: Sequence[pa.Array], n: int) -> pa.Array:
    """`a, b, c`: the columns' texts joined per row, a null one left out."""
    if columns and not any(c.null_count for c in columns):
        return pc.binary_join_element_wise(*columns, ", ") if len(columns) > 1 else columns[0]
    empty = pa.array([""] * n, pa.string()) if n else pa.array([], pa.string())
    seen = np.zeros(n, dtype=bool)
    parts: list[pa.Array] = []
    separators = pa.array(["", ", "], pa.string())
    for column in columns:
        present = column.is_valid().to_numpy(zero_copy_only=False)
        if not present.any():
            continue
        sep = separators.take(pa.array((seen & present).astype(np.int8)))
        parts.append(pc.binary_join_element_wise(sep, pc.fill_null(column, ""), ""))
        seen |= present
    if not parts:
        return empty
    return parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "")


def _decode_group(group: _Group, text: Text) -> tuple[pa.Array, pa.Array]:
    """(args, result) texts of a group's rows."""
    n = len(group.slots)
    spec = group.spec
    if spec is None or group.name in _SPECIAL or len(spec.args) > ARGS:
        args = group.shared(lambda ctx: ", ".join(call_args(ctx)), text)
    else:
        args = _joined([_arg_column(group, i, text) for i in range(len(spec.args))], n)
    return args, _result_column(group, text)


def _result_column(group: _Group, text: Text) -> pa.Array:
    """result_text per row: `str(ret)`, or an address's hex, for a whole column at once where
    that is what it shows (not an error, not fcntl's flags, no descriptor name to add), the
    rest decoded by value."""
    rets = group.slots[:, RET].view(np.int64)
    special = (rets >= -MAX_ERRNO) & (rets < 0)
    if group.name in ("fcntl", "fcntl64"):
        special[:] = True
    special |= group.slots[:, FD_NAME] != 0  # annotate_fd may name the returned descriptor
    if special.all():
        return group.shared(result_text, text)
    if group.name in HEX_RESULT:  # an address: hex_value() at the ABI's word size
        mask = np.uint64((1 << _Probe(group.name, (), group.abi).word_bits) - 1)
        plain = _pointers(group.slots[:, RET] & mask, b"0")
    else:
        plain = _decimals(group.slots[:, RET], 64, True)
    if not _agrees(group, result_text, plain, np.where(special, 0, rets), ~special):
        return group.shared(result_text, text)
    if not special.any():
        return plain
    odd = _Group(group.name, group.abi, group.spec, group.slots[special], group.paths)
    return pc.replace_with_mask(plain, pa.array(special), odd.shared(result_text, text))


def decode_columns(records: np.ndarray, data: Sequence[bytes], host_arch: str,
                   specs: SpecTable, paths: PathNames | None,
                   text: Text) -> dict[str, pa.Array]:
    """events.parquet's args, result, path and addr columns (each value through `text`) of
    EVENT_DTYPE `records`, `data` aligned with them: what decode_events gives, per row."""
    n = len(records)
    captured = np.fromiter(map(len, data), dtype=np.int64, count=n) > 0
    abis = np.where(captured, 0, records["abi"].astype(np.int64))
    nrs = np.where(captured, 0, records["nr"].astype(np.uint64))
    if n and int(nrs.max()) < _TABLE_MAX:
        # Each row's group as a small number (no sort of 64-bit keys), then a stable sort of
        # those (a radix sort for 16 bits) keeps each group's rows in their order.
        _, abi_rank = _distinct(abis.astype(np.uint64))
        _, nr_rank = _distinct(nrs)
        ranks = (captured * (int(abi_rank.max()) + 1) + abi_rank) * (int(nr_rank.max()) + 1) \
            + nr_rank
        _, group_of = _distinct(ranks.astype(np.uint64))
        if int(group_of.max()) < 1 << 16:
            group_of = group_of.astype(np.uint16)
        order = np.argsort(group_of, kind="stable")
        change = np.diff(group_of[order]) != 0
    else:
        order = np.lexsort((nrs, abis, captured))
        change = (np.diff(captured[order].astype(np.int8)) != 0) \
            | (np.diff(abis[order]) != 0) | (nrs[order][1:] != nrs[order][:-1])
    slots = _slots(records)
    pieces: dict[str, list[pa.Array]] = {c: [] for c in ("args", "result", "path", "addr")}
    for rows in np.split(order, np.flatnonzero(change) + 1) if n else []:
        first = int(rows[0])
        if captured[first]:
            decoded = decode_events(records[rows], [data[r] for r in rows.tolist()], host_arch,
                                    specs, paths)
            for column, values in (("args", [d.args_text for d in decoded]),
                                   ("result", [d.result_text for d in decoded]),
                                   ("path", [d.path for d in decoded]),
                                   ("addr", [d.addr for d in decoded])):
                pieces[column].append(pa.array([text(v) for v in values], pa.string()))
            continue
        abi, nr = int(abis[first]), int(nrs[first])
        spec = specs.for_call(abi_table(host_arch, abi), nr)
        group = _Group(syscall_name(host_arch, abi, nr), abi, spec,
                       _fd_names(slots[rows], records["fd_path"][rows], spec, paths), paths)
        args, result = _decode_group(group, text)
        pieces["args"].append(args)
        pieces["result"].append(result)
        blank = _blank(len(rows))
        pieces["path"].append(blank)
        pieces["addr"].append(blank)
    if not captured.any():  # one text for every row
        return {"args": _back(pieces["args"], order), "result": _back(pieces["result"], order),
                "path": _blank(n), "addr": _blank(n)}
    return {c: _back(p, order) for c, p in pieces.items()}


def _blank(n: int) -> pa.Array:
    return pa.array([""], pa.string()).take(pa.array(np.zeros(n, dtype=np.int32)))


def _back(pieces: list[pa.Array], order: np.ndarray) -> pa.Array:
    """The groups' pieces (rows in `order`) as one column in the rows' own order."""
    if not pieces:
        return pa.array([], pa.string())
    back = np.empty(len(order), dtype=np.int64)
    back[order] = np.arange(len(order))
    return pa.concat_arrays(pieces).take(pa.array(back))


def _slots(records: np.ndarray) -> np.ndarray:
    """Per row: the six registers, the result (its int64 bits) and FD_NAME (0 here)."""
    slots = np.zeros((len(records), 8), dtype=np.uint64)
    slots[:, :ARGS] = records["args"]
    slots[:, RET] = records["ret"].astype(np.int64).view(np.uint64)
    return slots


def _fd_names(slots: np.ndarray, path_ids: np.ndarray, spec: SyscallSpec | None,
              paths: PathNames | None) -> np.ndarray:
    """The group's slots with FD_NAME set where render._descriptor names args[0]'s
    descriptor: the call takes one in args[0], it is not negative, and its path has a name."""
    if paths is None or spec is None or not spec.effects & FD_ARG0:
        return slots
    fd = (slots[:, 0] & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.int32)
    candidates = (path_ids != 0) & (fd >= 0)
    for path_id in np.unique(path_ids[candidates]).tolist():
        if paths.name(int(path_id)):
            slots[candidates & (path_ids == path_id), FD_NAME] = path_id
    return slots
