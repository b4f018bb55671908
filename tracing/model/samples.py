"""CPU stack samples: the data model and the analyses the Samples view and the exports use.

Pure: no bcc, no Textual, no I/O. The engine counts samples in the kernel per (pid, tid, user
stack, kernel stack) and names their frames; here a stack is a tuple of function names, root
first (user frames, then kernel frames), with a cumulative count.

Snapshots carry the stacks whose counts changed since the previous snapshot, with their
cumulative counts: whoever keeps samples (SampleSet) keeps the newest per (pid, tid, frames).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

SampleKey = tuple[int, int, tuple[str, ...]]  # (pid, tid, frames)

KERNEL_MODULE = "[kernel]"
KERNEL_SUFFIX = "_[k]"  # flamegraph.pl's mark of a kernel frame in folded stacks
ROOT = "all"  # the root of the flame tree
NO_CALLER = "(root)"  # the caller of a stack's first frame
SELF = "(self)"  # the callee of a stack's last frame: samples in the function itself
SCOPES = ("all", "process", "thread")


def next_scope(scope: str) -> str:
    """What `g` switches to: all processes, per process, per thread, and round again."""
    return SCOPES[(SCOPES.index(scope) + 1) % len(SCOPES)]


@dataclass(frozen=True, slots=True)
class StackSample:
    """One distinct stack of one thread and how many samples landed on it so far."""

    pid: int
    tid: int
    comm: str
    frames: tuple[str, ...]  # function names, root first: user frames, then kernel frames
    modules: tuple[str, ...]  # per frame: binary or library path, KERNEL_MODULE, [module]
    kernel_frames: int = 0  # how many of the last frames are the kernel's
    count: int = 0  # cumulative samples

    @property
    def key(self) -> SampleKey:
        return (self.pid, self.tid, self.frames)

    def is_kernel(self, index: int) -> bool:
        return index >= len(self.frames) - self.kernel_frames


def total_samples(samples: Iterable[StackSample]) -> int:
    return sum(s.count for s in samples)


class SampleCounter:
    """Cumulative samples per (pid, tid, frames), fed with the engine's per-kernel-stack
    increments (several kernel stacks may name the same frames); hands out what changed."""

    def __init__(self) -> None:
        self._samples: dict[SampleKey, StackSample] = {}
        self._changed: set[SampleKey] = set()

    def add(self, sample: StackSample) -> None:
        """Add `sample.count` samples to its stack."""
        old = self._samples.get(sample.key)
        if old is not None:
            sample = StackSample(sample.pid, sample.tid, sample.comm, sample.frames,
                                 old.modules, old.kernel_frames, old.count + sample.count)
        self._samples[sample.key] = sample
        self._changed.add(sample.key)

    def take_changed(self) -> tuple[StackSample, ...]:
        changed, self._changed = self._changed, set()
        return tuple(self._samples[k] for k in sorted(changed))


class SampleSet:
    """The samples of every stack, from snapshots' changed stacks (cumulative counts since the
    trace started), counted from the last `reset`."""

    def __init__(self) -> None:
        self._samples: dict[SampleKey, StackSample] = {}  # counted since the reset
        self._raw: dict[SampleKey, int] = {}  # cumulative counts, as the snapshots give them
        self._baseline: dict[SampleKey, int] = {}  # cumulative counts at the reset
        self._total = 0  # kept as it goes: the header shows it at every snapshot
        self.version = 0  # increases whenever the set changes

    def update(self, samples: Iterable[StackSample]) -> None:
        for s in samples:
            self._raw[s.key] = s.count
            count = s.count - self._baseline.get(s.key, 0)
            if count > 0:
                before = self._samples.get(s.key)
                self._total += count - (before.count if before is not None else 0)
                self._samples[s.key] = s if count == s.count else dataclasses.replace(
                    s, count=count)
            self.version += 1

    def reset(self, keep_counting: bool = True) -> None:
        """Count from zero again: with `keep_counting` (a live or replayed trace) what comes
        next is counted from the counts so far, else (another stretch of a saved session)
        the next samples are taken as they are."""
        self._baseline = dict(self._raw) if keep_counting else {}
        if not keep_counting:
            self._raw.clear()
        self._samples.clear()
        self._total = 0
        self.version += 1

    def __iter__(self) -> Iterator[StackSample]:
        return iter(self._samples.values())

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def total(self) -> int:
        return self._total


# -- top functions, callers and callees --------------------------------------------------------


def scope_of(sample: StackSample, scope: str) -> tuple[int, ...]:
    """What a function's counts are kept per: nothing ("all"), (pid,), or (pid, tid)."""
    if scope == "process":
        return (sample.pid,)
    if scope == "thread":
        return (sample.pid, sample.tid)
    return ()


def in_scope(sample: StackSample, scope: tuple[int, ...]) -> bool:
    return (not scope or sample.pid == scope[0]) and (len(scope) < 2 or sample.tid == scope[1])


@dataclass(frozen=True, slots=True)
class FunctionCount:
    scope: tuple[int, ...]  # () for all processes, (pid,), or (pid, tid)
    comm: str
    function: str
    module: str
    self_count: int  # samples in the function itself (the leaf frame)
    total_count: int  # samples with the function anywhere on the stack, once per stack


def top_functions(samples: Iterable[StackSample], scope: str = "all") -> list[FunctionCount]:
    """Every function with its self and total samples, per scope; most self samples first."""
    selfs: dict[tuple[tuple[int, ...], str], int] = {}
    totals: dict[tuple[tuple[int, ...], str], int] = {}
    modules: dict[tuple[tuple[int, ...], str], str] = {}
    comms: dict[tuple[int, ...], str] = {}
    for s in samples:
        where = scope_of(s, scope)
        comms.setdefault(where, s.comm if where else "")
        if s.frames:
            leaf = (where, s.frames[-1])
            selfs[leaf] = selfs.get(leaf, 0) + s.count
        for function, module in dict(zip(s.frames, s.modules, strict=True)).items():
            key = (where, function)
            totals[key] = totals.get(key, 0) + s.count
            modules.setdefault(key, module)
    rows = [FunctionCount(where, comms[where], function, modules[(where, function)],
                          selfs.get((where, function), 0), total)
            for (where, function), total in totals.items()]
    rows.sort(key=lambda r: (-r.self_count, -r.total_count, r.function, r.scope))
    return rows


@dataclass(frozen=True, slots=True)
class Neighbours:
    """A function's callers and callees, each counted once per stack it appears in."""

    function: str
    self_count: int
    total_count: int
    callers: tuple[tuple[str, int], ...]  # (caller, samples), most first; NO_CALLER at a root
    callees: tuple[tuple[str, int], ...]  # (callee, samples), most first; SELF for its own


def neighbours(samples: Iterable[StackSample], function: str,
               scope: tuple[int, ...] = ()) -> Neighbours:
    callers: dict[str, int] = {}
    callees: dict[str, int] = {}
    self_count = total = 0
    for s in samples:
        if function not in s.frames or not in_scope(s, scope):
            continue
        total += s.count
        frames = s.frames
        above, below = set(), set()
        for i, name in enumerate(frames):
            if name == function:
                above.add(frames[i - 1] if i else NO_CALLER)
                below.add(frames[i + 1] if i + 1 < len(frames) else SELF)
        if frames[-1] == function:
            self_count += s.count
        for name in above:
            callers[name] = callers.get(name, 0) + s.count
        for name in below:
            callees[name] = callees.get(name, 0) + s.count
    return Neighbours(function, self_count, total, _most_first(callers), _most_first(callees))


def _most_first(counts: dict[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


# -- the flame (icicle) tree -----------------------------------------------------------------


@dataclass(slots=True)
class FlameNode:
    name: str
    count: int = 0  # samples in this frame and below
    self_count: int = 0  # samples that end in this frame
    kernel: bool = False
    children: dict[str, FlameNode] = field(default_factory=dict)

    def ordered(self) -> list[FlameNode]:
        """Children, most samples first (left-heavy, as speedscope draws them)."""
        return sorted(self.children.values(), key=lambda n: (-n.count, n.name))


def scope_label(sample: StackSample, scope: str) -> str:
    if scope == "process":
        return f"{sample.comm} ({sample.pid})"
    if scope == "thread":
        return f"{sample.comm} ({sample.pid}/{sample.tid})"
    return sample.comm


def flame_tree(samples: Iterable[StackSample], scope: str = "all") -> FlameNode:
    """ROOT, then a node per process name (per process or thread, by scope), then the frames."""
    root = FlameNode(ROOT)
    for s in samples:
        if s.count <= 0:
            continue
        root.count += s.count
        node = root.children.setdefault(scope_label(s, scope), FlameNode(scope_label(s, scope)))
        node.count += s.count
        for i, name in enumerate(s.frames):
            child = node.children.get(name)
            if child is None:
                child = node.children[name] = FlameNode(name, kernel=s.is_kernel(i))
            child.count += s.count
            node = child
        node.self_count += s.count
    return root


def find_node(root: FlameNode, path: tuple[str, ...]) -> FlameNode | None:
    node: FlameNode | None = root
    for name in path:
        node = node.children.get(name) if node is not None else None
    return node


@dataclass(frozen=True, slots=True)
class IcicleCell:
    x: int
    width: int
    path: tuple[str, ...]  # names from below the root down to this node
    name: str
    count: int
    kernel: bool


def icicle(root: FlameNode, zoom: tuple[str, ...], width: int) -> list[list[IcicleCell]]:
    """The icicle of the node at `zoom`, as rows of cells: the node itself across `width`
    columns, then each level of callees under their caller, each as wide as its share of the
    caller's samples. Cells narrower than a column are left out."""
    top = find_node(root, zoom)
    if top is None or top.count <= 0 or width <= 0:
        return []
    rows = [[IcicleCell(0, width, zoom, top.name, top.count, top.kernel)]]
    frontier = [(top, rows[0][0])]
    while frontier:
        row, next_frontier = [], []
        for node, cell in frontier:
            done = 0
            for child in node.ordered():
                x0 = cell.x + done * cell.width // node.count
                done += child.count
                x1 = cell.x + done * cell.width // node.count
                if x1 > x0:
                    below = IcicleCell(x0, x1 - x0, (*cell.path, child.name), child.name,
                                       child.count, child.kernel)
                    row.append(below)
                    next_frontier.append((child, below))
        if not row:
            break
        rows.append(row)
        frontier = next_frontier
    return rows


# -- folded stacks -----------------------------------------------------------------------------


def _folded_name(name: str) -> str:
    # ";" separates frames and a line ends a stack: neither may appear inside one.
    return name.replace(";", ":").replace("\n", " ").replace("\r", " ")


def folded_lines(samples: Iterable[StackSample]) -> list[str]:
    """`comm;frame1;frame2 count` lines, root first, kernel frames marked _[k], as
    flamegraph.pl, speedscope and inferno read them; equal stacks of several threads are one
    line."""
    counts: dict[tuple[str, ...], int] = {}
    for s in samples:
        if s.count <= 0:
            continue
        stack = (_folded_name(s.comm) or "?", *(
            _folded_name(f) + (KERNEL_SUFFIX if s.is_kernel(i) else "")
            for i, f in enumerate(s.frames)))
        counts[stack] = counts.get(stack, 0) + s.count
    return [f"{';'.join(stack)} {n}" for stack, n in sorted(counts.items())]


def folded_text(samples: Iterable[StackSample]) -> str:
    lines = folded_lines(samples)
    return "\n".join(lines) + "\n" if lines else ""


def parse_folded(text: str) -> dict[tuple[str, ...], int]:
    """Folded stacks back into {(comm, frame, ...): count}; ValueError on a malformed line."""
    stacks: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            raise ValueError(f"line {number} is not 'frame;frame;... count': {line!r}")
        key = tuple(stack.split(";"))
        stacks[key] = stacks.get(key, 0) + int(count)
    return stacks
