"""Processes and targets: the traced process tree (fork, exec, exit and /proc), the
picker's process list, what to trace (PIDs, a launched command), the launcher that holds a
launched command and its terminal relay, and the privileges tracing needs.
"""
