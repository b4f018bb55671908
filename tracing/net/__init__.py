"""Networking: the TCP connections of the traced processes (read from the engine's ring
buffer) and the containers they belong to (cgroups, the Docker Engine API, asynchronously).
"""
