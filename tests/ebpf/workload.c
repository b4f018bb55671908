// Workloads with exactly known syscalls, for the kernel tests.
//   workload getppid N [EXIT]    N getppid calls, then exit with EXIT
//   workload enoent N            N open("/nonexistent...") calls that fail with ENOENT
//   workload sleep N MS          N nanosleep calls of MS milliseconds
//   workload wait-then N         prints "ready", waits for a byte on stdin, then N getppid
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void getppids(long n)
{
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 64;
    const char *mode = argv[1];
    long n = atol(argv[2]);
    if (!strcmp(mode, "getppid")) {
        getppids(n);
        return argc > 3 ? atoi(argv[3]) : 0;
    }
    if (!strcmp(mode, "enoent")) {
        for (long i = 0; i < n; i++)
            syscall(SYS_openat, AT_FDCWD, "/nonexistent/sikte-tui-test", O_RDONLY);
        return 0;
    }
    if (!strcmp(mode, "sleep")) {
        long ms = argc > 3 ? atol(argv[3]) : 20;
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
        for (long i = 0; i < n; i++)
            syscall(SYS_nanosleep, &ts, NULL);
        return 0;
    }
    if (!strcmp(mode, "wait-then")) {
        char c;
        printf("ready\n");
        fflush(stdout);
        if (read(0, &c, 1) != 1)
            return 65;
        getppids(n);
        return 0;
    }
    return 64;
}
