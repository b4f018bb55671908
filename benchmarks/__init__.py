"""Overhead and throughput benchmarks for sikte-tui: `make bench` (python -m benchmarks).

See benchmarks/suite.py for the list, and docs/performance.md for the figures.
"""
