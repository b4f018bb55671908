"""The names of the files, sockets and pipes a trace has seen, interned to small integer ids.

Event records carry a descriptor's name as an id (EVENT_DTYPE "fd_path") and the per-file
accounting is keyed by it, so a name is stored once however many events mention it. The
table is append-only and shared: the engine thread adds names while the UI thread reads the
ids it was handed in snapshots (list appends and dict stores are atomic in CPython, and an
existing entry is never changed, so readers need no lock). Names are untrusted bytes from
the traced processes; `text()` gives them as a surrogate-free str, still to be shown as data.
"""

from __future__ import annotations

UNKNOWN_ID = 0  # a descriptor whose name is not known
OTHER_ID = 1  # every name added once the table is full
OTHER_NAME = b"(other)"
MAX_PATHS = 200_000
# The names' bytes are bounded too: a path is up to 4095 bytes, and 200,000 of them would be
# 800 MB that any local user can make the root tracer hold with failed opens of long names.
MAX_PATH_BYTES = 32 * 1024 * 1024


class PathTable:
    """bytes <-> id, bounded: past `max_paths` names or `max_bytes` bytes of names `add`
    returns OTHER_ID and counts the name in `overflow`."""

    def __init__(self, max_paths: int = MAX_PATHS, max_bytes: int = MAX_PATH_BYTES) -> None:
        self.max_paths = max(max_paths, 2)
        self.max_bytes = max_bytes
        self.bytes = 0  # of the names held
        self._names: list[bytes] = [b"", OTHER_NAME]
        # OTHER_NAME is not interned: a real file called "(other)" gets its own id.
        self._ids: dict[bytes, int] = {b"": UNKNOWN_ID}
        self.overflow = 0

    def add(self, name: bytes) -> int:
        found = self._ids.get(name)
        if found is not None:
            return found
        if len(self._names) >= self.max_paths or self.bytes + len(name) > self.max_bytes:
            self.overflow += 1
            return OTHER_ID
        self.bytes += len(name)
        # Append first: a reader may hold the id only after it is readable.
        self._names.append(name)
        new_id = len(self._names) - 1
        self._ids[name] = new_id
        return new_id

    def id_of(self, name: bytes) -> int | None:
        """The id of a name already added (None: never added, or added past the bound)."""
        return self._ids.get(name)

    def name(self, path_id: int) -> bytes:
        """The name of an id; b"" for 0 and for ids this table never gave."""
        names = self._names
        return names[path_id] if 0 <= path_id < len(names) else b""

    def text(self, path_id: int) -> str:
        """The name as text: bytes that are not UTF-8 as backslash escapes (\\xff), never
        lone surrogates. Still untrusted: show it through boundary.display_text."""
        return self.name(path_id).decode("utf-8", errors="backslashreplace")

    def __len__(self) -> int:
        return len(self._names)
