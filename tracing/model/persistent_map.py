"""PersistentMap: an immutable mapping whose next version costs what changed.

Snapshots carry every (pid, tid, syscall) total, and a tick changes a few of thousands: a new
version of the map shares all but the changed entries with the one before, so building a
snapshot costs the changed entries (plus one pointer per CHUNK entries), and an earlier
snapshot still shows exactly what it showed. Pure: no bcc, no Textual, no I/O.
"""

from __future__ import annotations

from collections.abc import Hashable, ItemsView, Iterable, Iterator, Mapping, ValuesView
from itertools import chain, islice
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

CHUNK_BITS = 5
CHUNK = 1 << CHUNK_BITS  # values per chunk: a changed entry copies its chunk (32 pointers)
_OFFSET = CHUNK - 1


class PersistentMap(Mapping[K, V], Generic[K, V]):
    """An immutable mapping that iterates in first-insertion order, like a dict.

    Values sit in chunks of CHUNK by the position of their key's first insertion; `updated`
    copies the list of chunks and the chunks it changes, and shares the rest. The keys and
    their positions are shared, append-only, by a version and the ones made from it: a
    version sees only the first `len(self)` of them, so later versions never change what an
    earlier one holds. Making two versions from one (a branch) copies the keys once."""

    __slots__ = ("_chunks", "_index", "_keys", "_len")

    _keys: list[K]
    _index: dict[K, int]
    _chunks: tuple[tuple[V, ...], ...]
    _len: int

    def __init__(self, items: Mapping[K, V] | None = None) -> None:
        self._keys, self._index, self._chunks, self._len = [], {}, (), 0
        if items:
            self._set(self.updated(items))

    @classmethod
    def from_lists(cls, keys: list[K], values: list[V]) -> PersistentMap[K, V]:
        """A new map of these keys (distinct, taken as the map's own) and values, built in
        bulk: a fraction of what inserting them one by one costs."""
        if len(keys) != len(values):
            raise ValueError(f"{len(keys)} keys for {len(values)} values")
        new: PersistentMap[K, V] = cls.__new__(cls)
        new._keys, new._index = keys, dict(zip(keys, range(len(keys)), strict=True))
        if len(new._index) != len(keys):
            raise ValueError("keys are not distinct")
        new._chunks = tuple(tuple(values[i : i + CHUNK]) for i in range(0, len(values), CHUNK))
        new._len = len(keys)
        return new

    def missing(self, keys: Iterable[K]) -> list[K]:
        """Those of `keys` that this version does not hold, in their order."""
        index, length = self._index, self._len
        return [k for k in keys if index.get(k, length) >= length]

    def _set(self, other: PersistentMap[K, V]) -> None:
        self._keys, self._index = other._keys, other._index
        self._chunks, self._len = other._chunks, other._len

    def updated(self, changes: Mapping[K, V]) -> PersistentMap[K, V]:
        """A new version with `changes` set (new keys go last); this one is unchanged."""
        if not changes:
            return self
        keys, index = self._keys, self._index
        if len(keys) != self._len:  # another version was made from this one: branch off
            keys = keys[: self._len]
            index = {k: i for i, k in enumerate(keys)}
        chunks = list(self._chunks)
        touched: dict[int, list[V]] = {}
        for key, value in changes.items():
            pos = index.get(key)
            if pos is None:
                pos = index[key] = len(keys)
                keys.append(key)
            c = pos >> CHUNK_BITS
            chunk = touched.get(c)
            if chunk is None:
                if c == len(chunks):
                    chunks.append(())
                chunk = touched[c] = list(chunks[c])
            if pos & _OFFSET < len(chunk):
                chunk[pos & _OFFSET] = value
            else:  # a new key: positions are handed out in order, so it is the next one
                chunk.append(value)
        for c, values in touched.items():
            chunks[c] = tuple(values)
        new: PersistentMap[K, V] = PersistentMap.__new__(PersistentMap)
        new._keys, new._index, new._chunks, new._len = keys, index, tuple(chunks), len(keys)
        return new

    def changed_since(self, older: PersistentMap[K, V]) -> list[K] | None:
        """The keys whose values are not the very objects `older` holds (new keys too), in
        their order; cost: one comparison per chunk, plus CHUNK per chunk that differs.
        None when `older` is not an earlier version of this one's line (another map, a
        branch, or a later version): then any key may differ."""
        if older._keys is not self._keys or older._len > self._len:
            return None
        keys, old_chunks, changed = self._keys, older._chunks, []
        for c, chunk in enumerate(self._chunks):
            before = old_chunks[c] if c < len(old_chunks) else ()
            if chunk is before:
                continue
            base = c << CHUNK_BITS
            changed += [keys[base + i] for i, value in enumerate(chunk)
                        if i >= len(before) or value is not before[i]]
        return changed

    def _position(self, key: object) -> int | None:
        pos = self._index.get(key)  # type: ignore[arg-type]  # any object may be asked
        return pos if pos is not None and pos < self._len else None

    def __getitem__(self, key: K) -> V:
        pos = self._position(key)
        if pos is None:
            raise KeyError(key)
        return self._chunks[pos >> CHUNK_BITS][pos & _OFFSET]

    def get(self, key: K, default: Any = None) -> Any:
        pos = self._position(key)
        return default if pos is None else self._chunks[pos >> CHUNK_BITS][pos & _OFFSET]

    def __contains__(self, key: object) -> bool:
        return self._position(key) is not None

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[K]:
        return islice(self._keys, self._len)

    def values(self) -> ValuesView[V]:
        return _Values(self)

    def items(self) -> ItemsView[K, V]:
        return _Items(self)

    def _values(self) -> Iterator[V]:
        return chain.from_iterable(self._chunks)

    def __repr__(self) -> str:
        return f"PersistentMap({dict(self.items())!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return PersistentMap, (dict(self.items()),)


class _Values(ValuesView[V]):
    """The values in one pass over the chunks (not one lookup per key)."""

    _mapping: PersistentMap[Any, V]

    def __iter__(self) -> Iterator[V]:
        return self._mapping._values()


class _Items(ItemsView[K, V]):
    """The items in one pass over the keys and the chunks (not one lookup per key)."""

    _mapping: PersistentMap[K, Any]

    def __iter__(self) -> Iterator[tuple[K, V]]:
        m = self._mapping
        return zip(iter(m), m._values(), strict=True)
