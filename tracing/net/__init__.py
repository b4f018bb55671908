"""Networking: the TCP connections of the traced processes (`tcp_monitor`, reading the
engine's ring buffer) and the containers they belong to: cgroup paths and the cgroup2 walk
(`cgroups`), the Docker Engine API client with its deadlines and peer checks (`docker_api`),
and the asynchronous resolver that names a cgroup (`containers`).
"""
