"""Decoding syscall events the way strace prints them: each syscall's argument kinds from the
kernel's tracepoint formats (`argspec`), constant and flag names generated from the kernel's
headers and the standard library (`constants`), strace's string quoting (`quote`), socket
addresses (`sockaddr`), each argument by its type (`args`), the calls strace decodes
specially (`calls`), descriptor names as strace -y shows them (`fdnames`) and whole calls
with their results (`render`).

Pure: may import tracing.model, tracing.boundary.display_text, tracing.errors, syscall_tables
and the standard library; never bcc, Textual or the engine (tests/unit/test_layers.py).
"""
