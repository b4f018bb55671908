// Many threads for the UI benchmark: N threads, each calling getppid() and sleeping 50 ms in
// a loop, for S seconds; the process then exits 0.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static volatile int running = 1;

static void *worker(void *arg)
{
    (void)arg;
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
    while (running) {
        getppid();
        nanosleep(&pause, NULL);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s THREADS SECONDS\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]);
    pthread_t *threads = calloc(n, sizeof(*threads));
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);  // 5,000 default 8 MiB stacks are too many
    for (int i = 0; i < n; i++) {
        if (pthread_create(&threads[i], &attr, worker, NULL) != 0) {
            fprintf(stderr, "thread %d: cannot create\n", i);
            return 1;
        }
    }
    sleep(atoi(argv[2]));
    running = 0;
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    return 0;
}
