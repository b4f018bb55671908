"""The e2e tests reuse the kernel tests' compiled workload."""

from tests.ebpf.conftest import workload  # noqa: F401
