// Dies of the signal named by its argument (a number): SIGSEGV by a real invalid memory
// access, any other by sending it to itself with kill(2) (its default action ends the
// process). No core file is written (RLIMIT_CORE 0). The tests run it through symlinks
// named after each signal, so each process has its own name.
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 64;
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    int sig = atoi(argv[1]);
    if (sig == SIGSEGV)
        *(volatile int *)0 = 1;
    kill(getpid(), sig);
    pause();
    return 3;
}
