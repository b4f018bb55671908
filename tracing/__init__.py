"""Kernel to data: what to trace, the bcc engine, the data model and the sessions on disk.

Each folder holds one concern and says what it may import (tests/unit/test_layers.py checks):

- model/     pure data: syscall statistics, snapshots, connections, stack samples, units and
             the summaries of a snapshot. Imports no other folder but boundary/ (for text).
- decode/    syscall events as strace prints them: argument kinds from the kernel's
             tracepoint formats, generated constant names, quoting, socket addresses.
             Pure: imports the model and syscall_tables only.
- engine/    the kernel side: the BPF program and its maps, the tracer loop, symbols, tracefs,
             kernel headers and the doctor. The only folder that imports bcc.
- session/   sessions on disk: the journal, stored sessions, time windows, Parquet export, the
             list of saved sessions, retention and replay. Never imports the engine.
- net/       TCP connections (from the engine's ring buffer) and container names.
- query/     the filter languages of the views and the picker's fuzzy matching.
- system/    processes and targets: the process tree from /proc, the picker's list, launching
             a command (the reaper, its terminal relay) and privileges.
- boundary/  where outside data comes in or goes out: files of the user, untrusted files,
             text that others control.

At the top: `sources.py` (what the TUI watches: a live trace, a replay or a saved session) and
`record.py` (headless recording) tie the engine to the sessions; `errors.py` is the one error a
user can cause.
"""
