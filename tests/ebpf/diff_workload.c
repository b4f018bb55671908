/* Runs that differ by known numbers of calls and failures, for tests/ebpf/test_diff_runs.py.
 * Built static (no loader, no library opens): apart from what is written here, every run
 * makes the same calls.
 *
 *   diff_workload run N M            M failed openat, then N getppid
 *   diff_workload phased N1 M1 N2 M2 DIR
 *                                    phase 1 (as run N1 M1), makes the directory DIR/phase1,
 *                                    waits until DIR/go exists, then phase 2 (as run N2 M2).
 *                                    (record gives a launched command no pipe to talk over;
 *                                    directories and faccessat stay clear of the openat count.)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void phase(long getppids, long failures)
{
    for (long i = 0; i < failures; i++)
        syscall(SYS_openat, AT_FDCWD, "/nonexistent/sikte-tui-diff", O_RDONLY);
    for (long i = 0; i < getppids; i++)
        syscall(SYS_getppid);
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "run")) {
        phase(atol(argv[2]), atol(argv[3]));
        return 0;
    }
    if (argc == 7 && !strcmp(argv[1], "phased")) {
        char mark[4096], go[4096];
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 10 * 1000000L};
        snprintf(mark, sizeof mark, "%s/phase1", argv[6]);
        snprintf(go, sizeof go, "%s/go", argv[6]);
        phase(atol(argv[2]), atol(argv[3]));
        if (mkdir(mark, 0755))
            return 66;
        /* The test says when: it waits for the trace to have counted phase 1 first. */
        for (long i = 0; access(go, F_OK); i++) {
            if (i > 60 * 100)
                return 65;
            nanosleep(&pause, NULL);
        }
        phase(atol(argv[4]), atol(argv[5]));
        return 0;
    }
    return 64;
}
