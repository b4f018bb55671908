"""Function probes (uprobes) as the user writes them: `BINARY_OR_LIB:FUNCTION`.

Pure: parsing and the pseudo syscall numbers probes are counted under. Whether the binary and
the function exist is checked by tracing.engine.uprobes (it needs bcc's ELF reader).

A probe's calls are counted in the syscall stats map under nr = PROBE_NR_BASE + its index, so
they flow through snapshots, tables and journals like syscalls. The base has bit 29 set: no
architecture numbers a syscall that high (x32 marks its numbers with bit 30, MIPS starts its
ABIs at 4000, ARM's private calls at 0xf0000), and it still fits the int32 `nr` columns.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracing.errors import UserError

PROBE_NR_BASE = 0x20000000
MAX_PROBES = 16  # probe function pairs compiled in bpf/profile.bpf.c
EXAMPLES = "e.g. c:malloc (c: libc) or /usr/bin/python3:main"


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    target: str  # a path, or a library name as BPF.find_library takes it ("c": libc)
    function: str

    @property
    def label(self) -> str:
        """The name shown where syscall names are."""
        return f"uprobe:{self.target}:{self.function}"


def parse_probe(text: str) -> ProbeSpec:
    """`c:malloc`, `/usr/bin/python3:main`; UserError (one line) for anything else."""
    target, colon, function = text.rpartition(":")
    if not colon or not target or not function:
        raise UserError(f"--uprobe {text!r}: expected BINARY_OR_LIB:FUNCTION, {EXAMPLES}")
    if any(c.isspace() for c in function):
        raise UserError(f"--uprobe {text!r}: {function!r} is not a function name; give "
                        f"BINARY_OR_LIB:FUNCTION, {EXAMPLES}")
    return ProbeSpec(target, function)


def parse_probes(texts: tuple[str, ...]) -> tuple[ProbeSpec, ...]:
    if len(texts) > MAX_PROBES:
        raise UserError(f"{len(texts)} --uprobe options: at most {MAX_PROBES} are supported; "
                        "drop some")
    specs = tuple(parse_probe(t) for t in texts)
    if len(set(specs)) != len(specs):
        raise UserError("the same --uprobe is given twice; give each function once")
    return specs


def probe_names(texts: tuple[str, ...]) -> dict[int, str]:
    """nr -> display name ("uprobe:c:malloc") of each probe, in the order given."""
    return {PROBE_NR_BASE + i: spec.label for i, spec in enumerate(parse_probes(texts))}
