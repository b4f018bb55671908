// A syscall-heavy workload for the benchmarks: N getppid() calls, optionally paced to RATE
// calls per second (busy-waiting on the vDSO clock, which makes no syscalls; 0: unpaced).
// CALL "openat" makes them openat() of a missing path of about 40 bytes instead (each fails
// with ENOENT): a path in every event.
// Prints "START_NS ELAPSED_NS N" (CLOCK_MONOTONIC) on stdout.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static const char PATH[] = "/nonexistent/sikte-bench/missing-file.conf";

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s N [RATE [getppid|openat]]\n", argv[0]);
        return 2;
    }
    long long n = atoll(argv[1]);
    double rate = argc > 2 ? atof(argv[2]) : 0.0;
    int opens = argc > 3 && strcmp(argv[3], "openat") == 0;
    long long start = now_ns();
    for (long long i = 0; i < n; i++) {
        if (opens)
            syscall(SYS_openat, AT_FDCWD, PATH, O_RDONLY);
        else
            getppid();
        if (rate > 0 && i % BATCH == BATCH - 1) {
            long long due = start + (long long)((double)(i + 1) * 1e9 / rate);
            while (now_ns() < due)
                ;
        }
    }
    long long end = now_ns();
    printf("%lld %lld %lld\n", start, end - start, n);
    return 0;
}
