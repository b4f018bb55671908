"""The kernel side, and the only place that imports bcc: the BPF program and its maps
(`program`), the tracer loop that turns them into snapshots (`tracer`), ELF and JIT symbols,
tracefs, kernel headers for compiling, and the doctor that explains a broken setup.

May import model, system, net, boundary; nothing imports it but the top-level sources and
record, and the CLI.
"""
