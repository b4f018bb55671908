// A workload in two phases with exactly known syscalls, for tests/ebpf/test_record_interval.py
// (built static: no loader's calls).
//   phased FIFO N M   N getppid calls; then opens FIFO, which blocks until the test opens
//                     it for writing (its go-ahead: no polling, no sleep), reads one byte;
//                     then M openat calls that fail with ENOENT; exit 0
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4)
        return 64;
    long n = atol(argv[2]), m = atol(argv[3]);
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
    int fd = open(argv[1], O_RDONLY);
    char c;
    if (fd < 0 || read(fd, &c, 1) != 1)
        return 65;
    close(fd);
    for (long i = 0; i < m; i++)
        syscall(SYS_openat, AT_FDCWD, "/nonexistent/sikte-tui-phase-2", O_RDONLY);
    return 0;
}
