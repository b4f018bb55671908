"""Function probes (--uprobe BINARY_OR_LIB:FUNCTION): finding each probe's file, checking its
function exists there before anything loads, and attaching bpf/profile.bpf.c's
probe_entry_<i> / probe_return_<i> to it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tracing.engine.bcc_types import BccProgram
from tracing.errors import UserError
from tracing.model.probes import ProbeSpec, parse_probes


def probe_path(spec: ProbeSpec) -> str:
    """The file a probe goes in: a path as given, else a library as bcc finds it ("c" is
    libc), else a program on PATH. UserError (one line) when there is none."""
    target = spec.target
    if "/" in target:
        if not Path(target).is_file():
            raise UserError(f"--uprobe {target}:{spec.function}: no such file {target}; give "
                            "the path of a binary or library, or a library name like c")
        return os.path.abspath(target)
    import bcc

    found = bcc.BPF.find_library(target)
    if found:
        return str(found.decode())
    program = shutil.which(target)
    if program:
        return program
    raise UserError(f"--uprobe {target}:{spec.function}: no library or program named "
                    f"{target!r} (ldconfig -p lists libraries); give a path, or a library "
                    "name like c for libc")


def check_probes(texts: tuple[str, ...]) -> list[tuple[ProbeSpec, str]]:
    """Each probe with its file, its function checked to exist there: bad ones fail here,
    before anything is loaded."""
    import bcc

    checked = []
    for spec in parse_probes(texts):
        path = probe_path(spec)
        try:
            bcc.BPF._check_path_symbol(path, spec.function, None, -1)  # what attach does
        except Exception:  # bcc raises a bare Exception for an unknown symbol
            raise UserError(f"--uprobe {spec.target}:{spec.function}: no function "
                            f"{spec.function!r} in {path}; 'nm -D {path}' lists its "
                            "functions") from None
        checked.append((spec, path))
    return checked


def attach_probes(bpf: BccProgram, texts: tuple[str, ...]) -> None:
    """Probe i counts calls (entry) and latency (return) under nr PROBE_NR_BASE + i."""
    for i, (spec, path) in enumerate(check_probes(texts)):
        try:
            bpf.attach_uprobe(name=path, sym=spec.function,
                              fn_name=f"probe_entry_{i}".encode())
            bpf.attach_uretprobe(name=path, sym=spec.function,
                                 fn_name=f"probe_return_{i}".encode())
        except Exception as err:  # bcc raises bare Exception for attach failures
            raise UserError(f"--uprobe {spec.target}:{spec.function}: could not attach "
                            f"({err}); run 'sikte-tui doctor'", exit_code=1) from err
