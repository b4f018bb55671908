// A workload for the CPU sampling and function probe tests, compiled by the tests with
// gcc -O0 -fno-omit-frame-pointer so that every frame is on the stack and can be walked.
//
//   profile_workload burn MS     spin in burn_cpu() (called from main) for MS ms of CPU
//   profile_workload calls N     call tick() exactly N times (and burn no CPU)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

__attribute__((noinline)) unsigned long burn_cpu(double ms)
{
    volatile unsigned long x = 0;
    double end = cpu_ms() + ms;
    while (cpu_ms() < end)
        for (int i = 0; i < 200000; i++)
            x += i * 2654435761u;
    return x;
}

__attribute__((noinline)) unsigned long tick(unsigned long n)
{
    return n * 3 + 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s burn MS | calls N\n", argv[0]);
        return 2;
    }
    long n = atol(argv[2]);
    unsigned long sum = 0;
    if (!strcmp(argv[1], "burn"))
        sum = burn_cpu((double)n);
    else if (!strcmp(argv[1], "calls"))
        for (long i = 0; i < n; i++)
            sum += tick(i);
    else
        return 2;
    return sum == 42; // use the result, so nothing is optimized away
}
