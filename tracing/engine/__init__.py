"""The kernel side, and the only place that imports bcc: the BPF program, its compile flags
and loading (`program`), the struct mirrors and map reader (`maps`), the event ring buffer
read from its memory mapping (`ringbuf`), the stack sampler
(`sampler`), function probes (`uprobes`), ELF symbols through bcc (`elf`) and names for
addresses (`symbols`), the typed view of bcc's objects (`bcc_types`), the tracer loop that
turns it all into snapshots (`tracer`), tracefs, kernel headers for compiling, and the doctor
that explains a broken setup.

May import model, decode (argument kinds for the capture map: `capture_config`), system,
net, boundary. Its users are the top-level sources and record, the
CLI, the benchmarks, and the TUI for one value type (`tracer.TraceConfig`, what to trace);
the session store and the model never import it (tests/unit/test_layers.py).
"""
