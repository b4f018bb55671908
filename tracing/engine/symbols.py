"""Names for the addresses of sampled stacks.

User frames: a process's executable mappings are read from /proc/PID/maps while it lives and
kept, so a process that exited since still resolves. Each address becomes a file offset in a
binary, named from that binary's ELF function symbols (read through bcc by the ElfReader
tracing.engine.elf gives, with debug files when installed) and cached per binary (device,
inode): every process running it shares the table and the results. An address no symbol
covers (a stripped binary) is named module+offset; JIT code in anonymous memory is named
from the process's /tmp/perf-PID.map when it writes one, else mapping+offset.

Kernel frames come from kallsyms through bcc's kernel symbol cache.

(bcc's per-process SymbolCache is not used for user frames: it keeps a file descriptor open
per module of every process, and freeing it closes descriptors it does not own.)
"""

from __future__ import annotations

import bisect
import ctypes
import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, cast

from tracing.boundary.untrusted_files import (
    Limits,
    Refused,
    fd_lines,
    open_untrusted,
    proc_file,
    read_proc,
)
from tracing.model.samples import KERNEL_MODULE

Frame = tuple[str, str]  # (function, module)
MAX_PARENTS = 65536  # forks remembered (threads too: the kernel reports both alike)
Symbol = tuple[int, int, str]  # (start, size, name): an ELF function symbol
# /proc/PID/maps: 65530 mappings (vm.max_map_count) with 4 KB paths would be 270 MB; real
# processes, JVMs and browsers included, stay under a few MB.
MAPS_LIMITS = Limits(32 << 20, truncate=True, max_line=4096 + 128)
MAX_EXEC_MAPPINGS = 65536
# A perf map is the traced program's to write: its first 16 MB and 200,000 symbols are read
# (JITs append, so those are the oldest), lines over 1 KB skipped, and it is read again when
# it changes, at most once per round.
PERF_MAP_LIMITS = Limits(16 << 20, truncate=True, max_line=1024, max_lines=200_000)


class ElfReader(Protocol):
    def symbols(self, path: str) -> list[Symbol]:
        """The file's function symbols ([] when it has none or is no ELF file)."""
        ...

    def text_section(self, path: str) -> tuple[int, int] | None:
        """(address, file offset) of its .text section, to turn offsets into addresses."""
        ...

    def vdso_symbols(self) -> list[Symbol]: ...


class Resolver(Protocol):
    """bcc.SymbolCache's interface: (name, offset, module), name None when unknown."""

    def resolve(self, addr: int, demangle: bool) -> tuple[bytes | None, int, bytes | None]: ...


@dataclass(frozen=True, slots=True)
class Mapping:
    start: int
    end: int
    offset: int  # file offset of `start`
    dev: str
    inode: int
    path: str  # "" for anonymous memory, "[vdso]", ...


def parse_maps(text: str) -> list[Mapping]:
    """The executable mappings of a /proc/PID/maps text, sorted by address."""
    return _mappings(text.splitlines())


def _mappings(lines: Iterable[str]) -> list[Mapping]:
    result = []
    for line in lines:
        parts = line.split(maxsplit=5)
        if len(parts) < 5 or "x" not in parts[1]:
            continue
        start, _, end = parts[0].partition("-")
        try:
            result.append(Mapping(int(start, 16), int(end, 16), int(parts[2], 16), parts[3],
                                  int(parts[4]), parts[5].strip() if len(parts) > 5 else ""))
        except ValueError:  # not the kernel's format: nothing to name with it
            continue
        if len(result) >= MAX_EXEC_MAPPINGS:
            break
    result.sort(key=lambda m: m.start)
    return result


def _executable(line: bytes) -> bool:
    perms = line.split(maxsplit=2)[1:2]
    return bool(perms) and b"x" in perms[0]


def read_maps(pid: int) -> list[Mapping] | None:
    """The process's executable mappings; its maps are read a chunk at a time and only the
    executable lines kept, within MAPS_LIMITS (a process chooses how many mappings and how
    long their paths are)."""
    with proc_file(pid, "maps") as fd:
        if fd is None:
            return None  # gone, or never existed
        try:
            # Paths are bytes to the kernel: surrogateescape keeps them usable for os.stat.
            lines = [line.decode(errors="surrogateescape")
                     for line in fd_lines(fd, MAPS_LIMITS) if _executable(line)]
        except OSError:  # exited while being read
            return None
    return _mappings(lines)


@functools.cache
def _cxa_demangle() -> Callable[..., int] | None:
    try:
        function = getattr(ctypes.CDLL("libstdc++.so.6"), "__cxa_demangle")
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_void_p
    function.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p,
                         ctypes.POINTER(ctypes.c_int)]
    return cast("Callable[..., int]", function)


def demangle(name: str) -> str:
    """A C++ symbol's readable name (as c++filt shows it); other names unchanged."""
    function = _cxa_demangle() if name.startswith("_Z") else None
    if function is None:
        return name
    status = ctypes.c_int()
    result = function(name.encode(), None, None, ctypes.byref(status))
    if not result:
        return name
    text = ctypes.string_at(result).decode(errors="replace")
    ctypes.CDLL(None).free(ctypes.c_void_p(result))
    return text


class SymbolTable:
    """Function symbols sorted by address, for lookups."""

    def __init__(self, symbols: Iterable[Symbol]) -> None:
        # Of aliases (one address, several names) keep the widest, then the plainest name.
        ordered = sorted(symbols, key=lambda s: (s[0], -s[1], len(s[2]) - len(s[2].lstrip("_")),
                                                 s[2]))
        kept: list[Symbol] = []
        for symbol in ordered:
            if not kept or kept[-1][0] != symbol[0]:
                kept.append(symbol)
        self._starts = [s[0] for s in kept]
        self._ends = [s[0] + s[1] for s in kept]
        self._names = [s[2] for s in kept]

    def __len__(self) -> int:
        return len(self._names)

    def lookup(self, addr: int) -> str | None:
        i = bisect.bisect_right(self._starts, addr) - 1
        # Symbols may nest (a function inside a larger one): look back a little.
        for j in range(i, max(i - 8, -1), -1):
            if self._starts[j] <= addr < self._ends[j]:
                return self._names[j]
        return None


@dataclass
class _Binary:
    table: SymbolTable
    text: tuple[int, int] | None  # (address, file offset) of .text

    def name(self, file_offset: int) -> str | None:
        if self.text is None:
            return None
        address, offset = self.text
        return self.table.lookup(file_offset - offset + address)


class _Process:
    def __init__(self, pid: int, maps: list[Mapping], generation: int) -> None:
        self.pid = pid
        self.maps = maps
        self.starts = [m.start for m in maps]
        self.refreshed = generation
        # (the file's inode, size and mtime, the round it was read in, its symbols)
        self.perf_map: tuple[tuple[int, int, int] | None, int, SymbolTable] | None = None

    def mapping(self, addr: int) -> Mapping | None:
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0 and addr < self.maps[i].end:
            return self.maps[i]
        return None


def _perf_map_symbols(lines: Iterable[bytes]) -> list[Symbol]:
    """A perf map's lines: `START SIZE name` (hex), as JITs write them."""
    symbols = []
    for line in lines:
        start, _, rest = line.partition(b" ")
        size, _, name = rest.partition(b" ")
        try:
            symbols.append((int(start, 16), int(size, 16), name.strip().decode(errors="replace")))
        except ValueError:
            continue
    return symbols


def _euid_of(pid: int) -> int | None:
    status = read_proc(pid, "status", 64 << 10)
    for line in status.data.splitlines() if status else ():
        if line.startswith(b"Uid:"):
            fields = line.split()
            return int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else None
    return None


def read_perf_map(pid: int) -> list[Symbol]:
    """/tmp/perf-PID.map as perf reads it: only a regular file (no symlink) that belongs to
    the process's effective user and that other users cannot write; else no symbols."""
    euid = _euid_of(pid)
    if euid is None:
        return []
    try:
        fd = open_untrusted(f"/tmp/perf-{pid}.map", owner_uid=euid, others_may_write=False)
    except (OSError, Refused):  # none, or not the process's own: a planted file names nothing
        return []
    try:
        return _perf_map_symbols(fd_lines(fd, PERF_MAP_LIMITS))
    except OSError:
        return []
    finally:
        os.close(fd)


class UserSymbols:
    """Frames of user-space addresses, per process, with symbols cached per binary."""

    def __init__(self, elf: ElfReader,
                 maps_of: Callable[[int], list[Mapping] | None] = read_maps) -> None:
        self._elf = elf
        self._maps_of = maps_of
        self._processes: dict[int, _Process] = {}
        self._binaries: dict[tuple[str, int], _Binary] = {}
        self._frames: dict[tuple[str, int, int], Frame] = {}  # (dev, inode, file offset)
        self._vdso: SymbolTable | None = None
        self._generation = 0
        self._parents: dict[int, int] = {}  # forked child -> parent, while the child is known

    def next_round(self) -> None:
        """A new round of reading (a tick): each process may be re-read once more."""
        self._generation += 1

    def watch(self, pid: int) -> bool:
        """Read the process's maps now, while it lives (once)."""
        return pid in self._processes or self._capture(pid)

    def _capture(self, pid: int) -> bool:
        maps = self._maps_of(pid)
        if maps is None:
            return False
        self._processes[pid] = _Process(pid, maps, self._generation)
        return True

    def inherit(self, child: int, parent: int) -> None:
        """A fork: the child starts with its parent's memory, so when its own maps cannot be
        read (a short-lived child gone before its first samples are named) the parent's
        name its frames. (`child` may be a new thread: then it is never looked up.)"""
        self.watch(parent)
        self._parents[child] = parent
        if len(self._parents) > MAX_PARENTS:
            del self._parents[next(iter(self._parents))]

    def forget(self, pid: int) -> None:
        self._processes.pop(pid, None)
        self._parents.pop(pid, None)

    def _inherited(self, pid: int) -> _Process | None:
        parent = self._processes.get(self._parents.get(pid, -1))
        if parent is None:
            return None
        proc = self._processes[pid] = _Process(pid, parent.maps, self._generation)
        return proc

    def watching(self, pid: int) -> bool:
        return pid in self._processes

    def frame(self, pid: int, addr: int) -> Frame:
        proc = self._processes.get(pid)
        if proc is None:
            proc = self._processes[pid] if self._capture(pid) else self._inherited(pid)
        mapping = proc.mapping(addr) if proc is not None else None
        if proc is not None and mapping is None and proc.refreshed != self._generation \
                and self._capture(pid):
            # Mapped since the capture: a library loaded later, dlopen, new JIT code.
            proc = self._processes[pid]
            mapping = proc.mapping(addr)
        if proc is None or mapping is None:
            return f"0x{addr:x}", "[unknown]"
        if mapping.path == "[vdso]":
            return self._vdso_frame(mapping, addr)
        if not mapping.inode:
            return self._anonymous_frame(proc, mapping, addr)
        key = (mapping.dev, mapping.inode, addr - mapping.start + mapping.offset)
        frame = self._frames.get(key)
        if frame is None:
            binary = self._binary(proc, mapping)
            name = binary.name(key[2]) if binary is not None else None
            frame = (demangle(name) if name else
                     f"{os.path.basename(mapping.path)}+0x{key[2]:x}", mapping.path)
            self._frames[key] = frame
        return frame

    def _binary(self, proc: _Process, mapping: Mapping) -> _Binary | None:
        key = (mapping.dev, mapping.inode)
        binary = self._binaries.get(key)
        if binary is None:
            path = self._file_of(proc.pid, mapping)
            if path is None:
                return None  # deleted or replaced since: module+offset it is
            binary = _Binary(SymbolTable(self._elf.symbols(path)), self._elf.text_section(path))
            self._binaries[key] = binary
        return binary

    @staticmethod
    def _file_of(pid: int, mapping: Mapping) -> str | None:
        """The mapped file itself: at its path, or through the process's root (containers);
        a file of the same name but another inode is not it."""
        for path in (mapping.path, f"/proc/{pid}/root{mapping.path}"):
            try:
                if os.stat(path).st_ino == mapping.inode:
                    return path
            except OSError:
                continue
        return None

    def _vdso_frame(self, mapping: Mapping, addr: int) -> Frame:
        if self._vdso is None:
            self._vdso = SymbolTable(self._elf.vdso_symbols())
        name = self._vdso.lookup(addr - mapping.start)  # the vdso is linked at address 0
        return name or f"[vdso]+0x{addr - mapping.start:x}", "[vdso]"

    def _anonymous_frame(self, proc: _Process, mapping: Mapping, addr: int) -> Frame:
        label = mapping.path or "[anon]"
        name = self._perf_map(proc).lookup(addr)
        if name is None:
            return f"{label}+0x{addr - mapping.start:x}", label
        return name, "[jit]"

    def _perf_map(self, proc: _Process) -> SymbolTable:
        """The JIT's perf map, read again when it has changed, at most once per round (a
        program rewriting its map all the time cannot make every lookup read it)."""
        try:
            st = os.lstat(f"/tmp/perf-{proc.pid}.map")
            version = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            version = None
        known = proc.perf_map
        if known is None or (known[0] != version and known[1] != self._generation):
            symbols = read_perf_map(proc.pid) if version is not None else []
            known = (version, self._generation, SymbolTable(symbols))
            proc.perf_map = known
        return known[2]


class KernelSymbols:
    """Frames of kernel addresses from kallsyms (loaded on first use, then cached)."""

    def __init__(self, new_resolver: Callable[[], Resolver]) -> None:
        self._new_resolver = new_resolver
        self._resolver: Resolver | None = None
        self._cache: dict[int, Frame] = {}

    def load(self) -> None:
        """Read kallsyms now (a tenth of a second): before tracing starts, not on the thread
        that drains the ring buffers, where the stall would drop events."""
        if self._resolver is None:
            self._resolver = self._new_resolver()
            self._resolver.resolve(0, False)  # bcc reads the table on the first look-up

    def frame(self, addr: int) -> Frame:
        frame = self._cache.get(addr)
        if frame is None:
            if self._resolver is None:
                self._resolver = self._new_resolver()
            name, _offset, module = self._resolver.resolve(addr, False)
            mod = module.decode(errors="replace") if module else ""
            frame = (name.decode(errors="replace") if name else f"0x{addr:x}",
                     KERNEL_MODULE if mod in ("", "kernel") else f"[{mod}]")
            self._cache[addr] = frame
        return frame
