"""Where bpf/syscalls.bpf.c reads struct task_struct, and the size of its process event ring.

The task's fields are read at the offsets the running kernel's BTF gives (as the TCP program
reads sk_err), never from the headers bcc compiles with, whose layout may be another
kernel's. They are compile-time constants (-D flags): the program is compiled on the machine
it runs on, and a constant offset costs nothing per event.
"""

from __future__ import annotations

import mmap

from tracing.net.tcp_monitor import btf_member_offset

# The process event ring: a storm of 2,000 threads made at once, or 1,000 processes a second
# (fork, exec, its rename, exit: four events each) over the engine's longest tick (2 s),
# many times over. struct proc_event is 176 bytes, 184 with the ring's header: 8 MiB hold
# about 45,000 events. Every event that still finds no room is counted (Drops.proc_events).
PROC_EVENTS_BYTES = 8 << 20


def proc_events_pages(page_size: int = mmap.PAGESIZE) -> int:
    """PROC_EVENTS_PAGES: the ring's size in pages (a power of two, as the kernel wants)."""
    pages = max(PROC_EVENTS_BYTES // page_size, 1)
    return 1 << (pages - 1).bit_length()


def task_offset_defines() -> dict[str, int]:
    """TASK_EXIT_CODE_OFF: offsetof(struct task_struct, exit_code) (a wait(2) status at
    sched_process_exit); TASK_SIGPENDING_OFF: offsetof(struct task_struct, pending.signal)
    (its first word: SIGKILL pending means the task is being killed). -1: not known (no
    BTF), and the program does without (exit statuses unknown, restart codes errors).
    TASK_PID_OFF, TASK_TGID_OFF: the pid and tgid fields (-1: a new thread is told by the
    clone flags its call was entered with)."""
    exit_code = btf_member_offset("task_struct", "exit_code")
    pending = btf_member_offset("task_struct", "pending")
    signal = btf_member_offset("sigpending", "signal")
    pid = btf_member_offset("task_struct", "pid")
    tgid = btf_member_offset("task_struct", "tgid")
    ids = (pid, tgid) if pid is not None and tgid is not None else (-1, -1)
    return {
        "TASK_EXIT_CODE_OFF": -1 if exit_code is None else exit_code,
        "TASK_SIGPENDING_OFF": -1 if pending is None or signal is None else pending + signal,
        # A new task's ids at sched_process_fork (a thread has its parent's tgid).
        "TASK_PID_OFF": ids[0],
        "TASK_TGID_OFF": ids[1],
    }
