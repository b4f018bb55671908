// The floor under a traced syscall: nanoseconds per clock read (rdtsc, vDSO clock_gettime)
// and per bare syscall (getppid), each measured over N calls.
// Prints one "NAME NS_PER_CALL" line per measurement.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define HAVE_RDTSC 1
#endif

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static volatile unsigned long long sink;

static double per_call_clock_gettime(long n)
{
    struct timespec ts;
    double start = now_ns();
    for (long i = 0; i < n; i++) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        sink += ts.tv_nsec;
    }
    return (now_ns() - start) / n;
}

#ifdef HAVE_RDTSC
static double per_call_rdtsc(long n)
{
    double start = now_ns();
    for (long i = 0; i < n; i++)
        sink += __rdtsc();
    return (now_ns() - start) / n;
}
#endif

static double per_call_getppid(long n)
{
    double start = now_ns();
    for (long i = 0; i < n; i++)
        sink += getppid();
    return (now_ns() - start) / n;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000000;
#ifdef HAVE_RDTSC
    printf("rdtsc %.2f\n", per_call_rdtsc(n));
#endif
    printf("clock_gettime %.2f\n", per_call_clock_gettime(n));
    printf("getppid %.2f\n", per_call_getppid(n));
    return 0;
}
