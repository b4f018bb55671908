// A workload with "JIT" code for the perf map tests: it copies a small spin loop into
// anonymous executable memory, as a JIT compiler does, and runs it.
//
//   jit_workload READY GO MS [sparse | LINK_TARGET]
//
// It writes "PID ADDRESS SIZE" (the code's, in hex) to READY, then optionally plants its own
// /tmp/perf-PID.map: "sparse" makes it a 400 MB sparse file, any other argument a symbolic
// link to that path (the attacks). Then it waits until GO exists (the test has written what
// it wanted) and spins in the copied code for MS ms of CPU.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

// mov ecx, 0x100000; 1: dec ecx; jnz 1b; ret
static const unsigned char SPIN[] = {0xB9, 0x00, 0x00, 0x10, 0x00, 0xFF, 0xC9, 0x75, 0xFC, 0xC3};

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s READY GO MS [sparse | LINK_TARGET]\n", argv[0]);
        return 2;
    }
    unsigned char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED)
        return 3;
    memcpy(code, SPIN, sizeof SPIN);
    if (mprotect(code, 4096, PROT_READ | PROT_EXEC))
        return 3;
    char map[64];
    snprintf(map, sizeof map, "/tmp/perf-%d.map", getpid());
    if (argc > 4 && !strcmp(argv[4], "sparse")) {
        FILE *f = fopen(map, "w");
        if (!f || ftruncate(fileno(f), 400L << 20))
            return 4;
        fclose(f);
    } else if (argc > 4 && symlink(argv[4], map)) {
        return 4;
    }
    FILE *ready = fopen(argv[1], "w");
    if (!ready)
        return 5;
    fprintf(ready, "%d %lx %zx\n", getpid(), (unsigned long)code, sizeof SPIN);
    fclose(ready);
    for (int i = 0; access(argv[2], F_OK); i++) {
        if (i > 3000)
            return 6; // 30 s without GO
        usleep(10000);
    }
    void (*spin)(void) = (void (*)(void))code;
    double end = cpu_ms() + atof(argv[3]);
    while (cpu_ms() < end)
        spin();
    unlink(map);
    return 0;
}
