"""Kernel to data: targets, the bcc engine, the data model, sessions.

Only `tracing.bpf_engine` imports bcc; everything else here works on plain data.
"""
