"""Syscall and ABI names for the Parquet export's columns: each distinct (ABI, nr) looked up
once, however many million rows name it (tracing.session.export, export_events)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from syscall_tables import ABI_NATIVE, abi_syscall_name, abi_table
from tracing.session.stored_session import StoredSession


class Namer:
    """Syscall names per (ABI code, nr): each call's own ABI picks its table (the readers
    give rows of older sessions their process's)."""

    def __init__(self, session: StoredSession) -> None:
        self.arch = str(session.meta.get("arch", "x86_64"))
        self.probes = {int(k): v for k, v in (session.meta.get("probes") or {}).items()}

    def name(self, abi: int, nr: int) -> str:
        probe = self.probes.get(nr) if abi == ABI_NATIVE else None
        return probe if probe is not None else abi_syscall_name(self.arch, abi, nr)

    def column(self, abis: np.ndarray, nrs: np.ndarray) -> pa.DictionaryArray:
        """Names for many rows at once: each distinct (abi, nr) is looked up once."""
        return _dictionary(np.asarray(abis, dtype=np.int64), np.asarray(nrs, dtype=np.int64),
                           self.name)

    def abi_column(self, abis: np.ndarray) -> pa.DictionaryArray:
        """The table name of each row's ABI code ("x86_64", "i386", "x32"...)."""
        codes = np.asarray(abis, dtype=np.int64)
        return _dictionary(codes, np.zeros(len(codes), dtype=np.int64),
                           lambda abi, _nr: abi_table(self.arch, abi))


def _dictionary(abis: np.ndarray, nrs: np.ndarray,
                label: Callable[[int, int], str]) -> pa.DictionaryArray:
    if not len(abis):
        return pa.DictionaryArray.from_arrays(pa.array([], pa.int32()),
                                              pa.array([], pa.string()))
    pairs = ((abis & 3) << 32) | (nrs & 0xFFFFFFFF)
    unique, inverse = _distinct(pairs)
    labels = [label(int(u >> 32), int(u & 0xFFFFFFFF)) for u in unique]
    dictionary = sorted(set(labels))
    index = {n: i for i, n in enumerate(dictionary)}
    codes = np.array([index[n] for n in labels], dtype=np.int32)[inverse.reshape(-1)]
    return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(dictionary))


def _distinct(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique's (values, inverse); by a table when the numbers are small (millions of
    events of a few hundred calls: no sort)."""
    small = (pairs >> 32 << 20) | (pairs & 0xFFFFF)
    if int((pairs & 0xFFFFFFFF).max()) >= 1 << 20:
        unique, inverse = np.unique(pairs, return_inverse=True)
        return unique, inverse.reshape(-1)
    held = np.zeros(4 << 20, dtype=bool)
    held[small] = True
    found = np.flatnonzero(held)
    index = np.cumsum(held) - 1
    return (found >> 20 << 32) | (found & 0xFFFFF), index[small]
