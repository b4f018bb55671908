// `many_threads N`: N threads (pthread_create: clone3 here) all alive together, each making
// one getppid(2); then they all end (the exit system call) and the process exits 0. One
// process with N threads: a tracer must not show any of them as a process.
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_barrier_t all_alive;

static void *work(void *arg)
{
    (void)arg;
    getppid();
    pthread_barrier_wait(&all_alive);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 64;
    int n = atoi(argv[1]);
    pthread_t *threads = calloc((size_t)n, sizeof *threads);
    pthread_attr_t attr;
    if (!threads || pthread_attr_init(&attr) || pthread_attr_setstacksize(&attr, 64 * 1024))
        return 1;
    if (pthread_barrier_init(&all_alive, NULL, (unsigned)n + 1))
        return 1;
    for (int i = 0; i < n; i++)
        if (pthread_create(&threads[i], &attr, work, NULL))
            return 2;
    pthread_barrier_wait(&all_alive);
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    return 0;
}
