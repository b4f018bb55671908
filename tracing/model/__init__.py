"""Pure data and functions over it: syscall statistics and their histograms, processes,
events, immutable snapshots and the builder that makes them (over `persistent_map`, which
shares unchanged entries between snapshots), TCP connections, CPU stack samples, units,
and the summaries (`report`) that record and the TUI print.

Imports neither bcc nor Textual nor any other tracing folder (boundary.display_text aside, to
show outside text, and decode.argspec, whose call effects the descriptor table follows), so
the TUI, the store, replay and most tests use it without root.
"""
