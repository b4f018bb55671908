// A storm of threads: N threads made as fast as pthread_create goes, K of them kept running
// until the test says go (DIR/go), the others ending at once. Each names itself st-I
// (prctl PR_SET_NAME) and makes one getppid. Writes DIR/ready once the N - K have been
// joined, then exits 0 after joining the rest. No process is made.
// Usage: thread_storm DIR N K
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *dir;
static int keep;

static int exists(const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void *run(void *arg)
{
    long i = (long)arg;
    char name[16];
    snprintf(name, sizeof(name), "st-%ld", i);
    prctl(PR_SET_NAME, name, 0, 0, 0);
    syscall(SYS_getppid);
    if (i < keep)
        while (!exists("go"))
            usleep(10000);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    dir = argv[1];
    int n = atoi(argv[2]);
    keep = atoi(argv[3]);
    pthread_t *threads = calloc(n, sizeof(*threads));
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (long i = 0; i < n; i++)
        if (pthread_create(&threads[i], &attr, run, (void *)i) != 0)
            return 3;
    for (int i = keep; i < n; i++)
        pthread_join(threads[i], NULL);
    char path[4096];
    snprintf(path, sizeof(path), "%s/ready", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return 4;
    fclose(f);
    for (int i = 0; i < keep; i++)
        pthread_join(threads[i], NULL);
    return 0;
}
