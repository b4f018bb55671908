"""Can this system trace? Independent checks, each with a status, a detail and a fix.

Nothing here imports bcc at module level: the doctor must explain a missing or wrong bcc,
so the bcc check imports it inside a function. Every check is wrapped so an unexpected
error becomes a "fail" line with the error text, never a traceback.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import re
import resource
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tracing.engine.kheaders import HeaderChoice, find_kernel_headers, has_kconfig

PASS, WARN, FAIL = "pass", "warn", "fail"

# bpf(2) and perf_event_open(2) numbers. Deliberately a small local table rather than
# syscall_tables: the doctor must work even when the rest of the app is broken.
_SYSCALL_NR = {
    "x86_64": {"bpf": 321, "perf_event_open": 298},
    "aarch64": {"bpf": 280, "perf_event_open": 241},
}

CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39

# (category, name, required): without the sock one only the TCP connections view is lost.
TRACEPOINTS = (
    ("raw_syscalls", "sys_enter", True),
    ("raw_syscalls", "sys_exit", True),
    ("sched", "sched_process_fork", True),
    ("sched", "sched_process_exec", True),
    ("sched", "sched_process_exit", True),
    ("task", "task_rename", True),
    ("sock", "inet_sock_set_state", False),
)

HEADERS_FIX = "apt install linux-headers-$(dpkg --print-architecture)"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "pass", "warn" or "fail"
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class DoctorInputs:
    """What the checks look at. The defaults are the real system; tests replace parts."""

    release: str = field(default_factory=platform.release)
    machine: str = field(default_factory=platform.machine)
    proc_status: Path = Path("/proc/self/status")
    mounts: Path = Path("/proc/self/mounts")
    btf: Path = Path("/sys/kernel/btf/vmlinux")
    tracefs_roots: tuple[Path, ...] = (
        Path("/sys/kernel/tracing"),
        Path("/sys/kernel/debug/tracing"),
    )
    mount_tracefs: bool = True  # as root, try to mount tracefs at tracefs_roots[0] if missing
    find_headers: Callable[[], HeaderChoice] = find_kernel_headers


def run_checks(inputs: DoctorInputs | None = None) -> list[Check]:
    """Run every check in order; one check's failure never stops the others."""
    inputs = inputs or DoctorInputs()
    return [_guarded(name, check, inputs) for name, check in _CHECKS]


def can_trace(checks: list[Check]) -> bool:
    return all(check.status != FAIL for check in checks)


def _guarded(name: str, check: Callable[[DoctorInputs], Check], inputs: DoctorInputs) -> Check:
    try:
        return check(inputs)
    except Exception as err:  # a doctor that crashes helps nobody: report it as a failure
        return Check(
            name,
            FAIL,
            f"the check itself failed: {type(err).__name__}: {err}",
            "please report this as a sikte-tui bug",
        )


def kernel_version(release: str) -> tuple[int, int] | None:
    match = re.match(r"(\d+)\.(\d+)", release)
    return (int(match[1]), int(match[2])) if match else None


# --- kernel and privileges ------------------------------------------------------------------


def check_kernel(inputs: DoctorInputs) -> Check:
    version = kernel_version(inputs.release)
    if version is None:
        return Check("kernel", WARN, f"cannot parse the kernel release {inputs.release!r}")
    if version < (4, 18):
        return Check(
            "kernel",
            FAIL,
            f"{inputs.release}: raw tracepoints need 4.18 or newer",
            "upgrade the kernel",
        )
    if version < (5, 8):
        return Check(
            "kernel",
            WARN,
            f"{inputs.release}: older than 5.8 (no BPF ring buffer)",
            "upgrade to 5.8 or newer for every feature",
        )
    return Check("kernel", PASS, inputs.release)


def check_privileges(inputs: DoctorInputs) -> Check:
    caps = _effective_caps(inputs.proc_status)
    who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()}"
    if caps >> CAP_SYS_ADMIN & 1:
        return Check("privileges", PASS, f"{who} with CAP_SYS_ADMIN")
    if caps >> CAP_BPF & 1 and caps >> CAP_PERFMON & 1:
        return Check("privileges", PASS, f"{who} with CAP_BPF + CAP_PERFMON")
    return Check(
        "privileges",
        FAIL,
        f"{who} without CAP_SYS_ADMIN or CAP_BPF + CAP_PERFMON (CapEff={caps:#x})",
        "run it as root: sudo sikte-tui ...",
    )


def _effective_caps(proc_status: Path) -> int:
    for line in proc_status.read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    raise ValueError(f"no CapEff line in {proc_status}")


# --- bpf(2) and perf_event_open(2) ------------------------------------------------------------


class _ProgLoadAttr(ctypes.Structure):
    """The BPF_PROG_LOAD prefix of union bpf_attr; the kernel zero-fills the rest."""

    _fields_ = (
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
    )


class _PerfEventAttr(ctypes.Structure):
    """perf_event_attr as of PERF_ATTR_SIZE_VER0 (64 bytes), enough for a software event."""

    _fields_ = (
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64),
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),  # bit 0: disabled
        ("wakeup_events", ctypes.c_uint32),
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),
    )


BPF_PROG_LOAD, BPF_PROG_TYPE_SOCKET_FILTER = 5, 1
PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK, PERF_FLAG_FD_CLOEXEC = 1, 0, 8


def _syscall(number: int, *args: object) -> tuple[int, int]:
    """Call syscall(2); return (result, errno)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(ctypes.c_long(number), *args)
    return result, ctypes.get_errno()


def _errno_text(err: int) -> str:
    return f"{errno.errorcode.get(err, err)}: {os.strerror(err)}"


def check_bpf_syscall(inputs: DoctorInputs) -> Check:
    numbers = _SYSCALL_NR.get(inputs.machine)
    if numbers is None:
        return Check(
            "bpf syscall", WARN, f"not tested: unknown syscall numbers on {inputs.machine}"
        )
    # mov r0, 0; exit  (BPF_ALU64|BPF_MOV|BPF_K = 0xb7, BPF_JMP|BPF_EXIT = 0x95)
    insns = ctypes.create_string_buffer(struct.pack("=BBhiBBhi", 0xB7, 0, 0, 0, 0x95, 0, 0, 0))
    license_ = ctypes.create_string_buffer(b"GPL")
    attr = _ProgLoadAttr(
        prog_type=BPF_PROG_TYPE_SOCKET_FILTER,
        insn_cnt=2,
        insns=ctypes.addressof(insns),
        license=ctypes.addressof(license_),
    )
    fd, err = _syscall(
        numbers["bpf"],
        ctypes.c_int(BPF_PROG_LOAD),
        ctypes.byref(attr),
        ctypes.c_uint(ctypes.sizeof(attr)),
    )
    if fd < 0:
        fix = {errno.ENOSYS: "use a kernel built with CONFIG_BPF_SYSCALL=y"}.get(
            err, "run as root (or with CAP_BPF); see also sysctl kernel.unprivileged_bpf_disabled"
        )
        return Check("bpf syscall", FAIL, f"BPF_PROG_LOAD failed ({_errno_text(err)})", fix)
    os.close(fd)
    return Check("bpf syscall", PASS, "loaded and unloaded a trivial BPF program")


def check_perf_cpu_clock(inputs: DoctorInputs) -> Check:
    numbers = _SYSCALL_NR.get(inputs.machine)
    if numbers is None:
        return Check(
            "perf cpu-clock", WARN, f"not tested: unknown syscall numbers on {inputs.machine}"
        )
    attr = _PerfEventAttr(
        type=PERF_TYPE_SOFTWARE,
        size=ctypes.sizeof(_PerfEventAttr),
        config=PERF_COUNT_SW_CPU_CLOCK,
        flags=1,
    )
    fd, err = _syscall(
        numbers["perf_event_open"],
        ctypes.byref(attr),
        ctypes.c_int(-1),
        ctypes.c_int(0),
        ctypes.c_int(-1),
        ctypes.c_ulong(PERF_FLAG_FD_CLOEXEC),
    )
    if fd < 0:
        # Only CPU stack sampling needs it; syscall tracing works without.
        return Check(
            "perf cpu-clock",
            WARN,
            f"cannot open a cpu-clock event ({_errno_text(err)}); "
            "CPU stack samples will be unavailable",
            "run as root (or with CAP_PERFMON); see sysctl kernel.perf_event_paranoid",
        )
    os.close(fd)
    return Check("perf cpu-clock", PASS, "opened a cpu-clock software event on CPU 0")


# --- kernel interfaces ----------------------------------------------------------------------


def check_btf(inputs: DoctorInputs) -> Check:
    if inputs.btf.is_file():
        return Check("BTF", PASS, str(inputs.btf))
    return Check(
        "BTF",
        WARN,
        f"{inputs.btf} is missing; bcc works without it",
        "use a kernel built with CONFIG_DEBUG_INFO_BTF=y",
    )


def _tracefs_root(inputs: DoctorInputs) -> Path | None:
    # os.path.isdir, not Path.is_dir: the latter raises PermissionError for non-root users.
    return next((r for r in inputs.tracefs_roots if os.path.isdir(r / "events")), None)


def check_tracefs(inputs: DoctorInputs) -> Check:
    if root := _tracefs_root(inputs):
        return Check("tracefs", PASS, f"mounted at {root}")
    target = inputs.tracefs_roots[0]
    fix = f"mount -t tracefs nodev {target}"  # also the command we run: see _mount_tracefs
    if os.geteuid() != 0:
        return Check("tracefs", FAIL, "not found or not readable (not root)", f"run as root; {fix}")
    if not inputs.mount_tracefs:
        return Check("tracefs", FAIL, "not mounted", fix)
    return _mount_tracefs(inputs, target, fix)


def _mount_tracefs(inputs: DoctorInputs, target: Path, fix: str) -> Check:
    try:
        command = ["mount", "-t", "tracefs", "nodev", str(target)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
        outcome = done.stderr.strip().splitlines()[0] if done.stderr.strip() else ""
        outcome = outcome or f"mount exited with {done.returncode}"
    except (OSError, subprocess.TimeoutExpired) as err:
        outcome = str(err)
    if root := _tracefs_root(inputs):
        return Check("tracefs", PASS, f"was not mounted; mounted it at {root}")
    return Check(
        "tracefs",
        FAIL,
        f"not mounted, and `{fix}` failed: {outcome}",
        "use a kernel with CONFIG_FTRACE and tracepoints",
    )


def check_tracepoints(inputs: DoctorInputs) -> Check:
    root = _tracefs_root(inputs)
    if root is None:
        return Check("tracepoints", FAIL, "cannot look: tracefs is not available", "see tracefs")
    missing = [
        (f"{cat}/{name}", required)
        for cat, name, required in TRACEPOINTS
        if not os.path.isdir(root / "events" / cat / name)
    ]
    if not missing:
        return Check("tracepoints", PASS, f"all {len(TRACEPOINTS)} present in {root}/events")
    names = ", ".join(name for name, _ in missing)
    if any(required for _, required in missing):
        return Check(
            "tracepoints",
            FAIL,
            f"missing {names}",
            "use a kernel built with CONFIG_FTRACE_SYSCALLS and tracepoints",
        )
    return Check(
        "tracepoints",
        WARN,
        f"missing {names}: the TCP connections view is unavailable",
        "use a kernel with the sock tracepoints (4.16 or newer)",
    )


# --- userspace ------------------------------------------------------------------------------


def check_bcc(inputs: DoctorInputs) -> Check:
    fix = (
        "apt install python3-bpfcc (then use /usr/bin/python3, or a venv with "
        "--system-site-packages)"
    )
    try:
        import bcc  # the one place outside the engine: to explain a broken install
    except (ImportError, OSError) as err:
        return Check("bcc", FAIL, f"cannot import bcc: {err}", fix)
    where = os.path.dirname(getattr(bcc, "__file__", None) or "?")
    if not hasattr(bcc, "BPF"):
        return Check(
            "bcc",
            FAIL,
            f"the 'bcc' in {where} is the unrelated PyPI package, not BPF's",
            "pip uninstall bcc; apt install python3-bpfcc",
        )
    return Check("bcc", PASS, f"bcc {getattr(bcc, '__version__', '?')} from {where}")


def check_headers(inputs: DoctorInputs) -> Check:
    choice = inputs.find_headers()
    if choice.kind in ("exact", "kheaders"):
        return Check("kernel headers", PASS, choice.description)
    if choice.kind == "user":
        if choice.path and has_kconfig(choice.path):
            return Check("kernel headers", PASS, choice.description)
        return Check(
            "kernel headers",
            FAIL,
            f"{choice.description}, but it has no include/linux/kconfig.h",
            "unset BCC_KERNEL_SOURCE or point it at headers",
        )
    if choice.kind == "fallback":
        detail = (
            f"{inputs.release} has none of its own; using {choice.description}; "
            "tracepoint programs compile with them"
        )
        fix = (
            "none needed; for exact headers install the running kernel's header package "
            "or use a kernel built with CONFIG_IKHEADERS"
        )
        return Check("kernel headers", WARN, detail, fix)
    return Check("kernel headers", FAIL, choice.description, HEADERS_FIX)


def check_memlock(inputs: DoctorInputs) -> Check:
    version = kernel_version(inputs.release)
    if version is not None and version >= (5, 11):
        return Check("memlock", PASS, "not needed (memcg accounting)")
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if soft == resource.RLIM_INFINITY or soft >= 64 << 20:
        return Check("memlock", PASS, "RLIMIT_MEMLOCK is large enough for BPF maps")
    return Check(
        "memlock",
        WARN,
        f"RLIMIT_MEMLOCK is {soft >> 10} KiB; before 5.11 BPF maps count against it",
        "ulimit -l unlimited (or LimitMEMLOCK=infinity)",
    )


def check_cgroup_v2(inputs: DoctorInputs) -> Check:
    for line in inputs.mounts.read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] == "cgroup2":
            return Check("cgroup v2", PASS, f"mounted at {_unescape(fields[1])}")
    return Check(
        "cgroup v2",
        WARN,
        "no cgroup2 mount: grouping by container is unavailable",
        "mount -t cgroup2 none /sys/fs/cgroup/unified",
    )


def _unescape(mount_field: str) -> str:
    # /proc/self/mounts writes space, tab, newline and backslash as octal escapes.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), mount_field)


_CHECKS: tuple[tuple[str, Callable[[DoctorInputs], Check]], ...] = (
    ("kernel", check_kernel),
    ("privileges", check_privileges),
    ("bpf syscall", check_bpf_syscall),
    ("BTF", check_btf),
    ("tracefs", check_tracefs),
    ("tracepoints", check_tracepoints),
    ("perf cpu-clock", check_perf_cpu_clock),
    ("bcc", check_bcc),
    ("kernel headers", check_headers),
    ("memlock", check_memlock),
    ("cgroup v2", check_cgroup_v2),
)
