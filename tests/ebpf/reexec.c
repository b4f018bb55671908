// A program that re-executes itself: `reexec N` makes a few known calls (getppid, an open
// of a missing path, which fails with ENOENT) and then execs `reexec N-1` through
// /proc/self/exe, until N is 0. Every generation is the same process (one pid).
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 64;
    long n = atol(argv[1]);
    getppid();
    if (open("/nonexistent/sikte-reexec", O_RDONLY) >= 0)
        return 1;
    if (n <= 0)
        return 0;
    char next[24];
    snprintf(next, sizeof next, "%ld", n - 1);
    char *args[] = {argv[0], next, NULL};
    execv("/proc/self/exe", args);
    return 2;
}
