// Workloads whose calls --timing off counts at their exit alone (tests/ebpf/test_exit_only.py):
//   signals N   N handler returns of each kind (sigaction without and with SA_SIGINFO)
//   threads N   N threads blocked in read on a pipe; once /proc shows each inside its read
//               (polled with openat, pread64, close: their counts vary), the main thread
//               ends them with exit_group(5)
//   forks N     N children that each make one getppid and _exit(0)
//   nocall N    N calls of syscall(-1) (ENOSYS)
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int pipe_fds[2], ready_fds[2];
static pid_t tids[64];

// Whether the thread is inside read(2) now: /proc's first field is the call's number.
static int in_read(pid_t tid)
{
    char path[64], buf[64], want[16];
    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
    snprintf(want, sizeof(want), "%d ", (int)SYS_read);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t got = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    return got > 0 && !strncmp(buf, want, strlen(want));
}

static void on_plain(int sig) { (void)sig; }
static void on_info(int sig, siginfo_t *info, void *ctx) { (void)sig; (void)info; (void)ctx; }

static void *blocked(void *arg)
{
    char c;
    tids[(long)arg] = syscall(SYS_gettid);
    write(ready_fds[1], "r", 1);
    for (;;)
        read(pipe_fds[0], &c, 1);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    int n = atoi(argv[2]);
    if (!strcmp(argv[1], "signals")) {
        struct sigaction plain = {0}, info = {0};
        plain.sa_handler = on_plain;
        info.sa_sigaction = on_info;
        info.sa_flags = SA_SIGINFO;
        sigaction(SIGUSR1, &plain, 0);
        sigaction(SIGUSR2, &info, 0);
        for (int i = 0; i < n; i++) {
            raise(SIGUSR1);
            raise(SIGUSR2);
        }
        return 0;
    }
    if (!strcmp(argv[1], "threads")) {
        pthread_t t;
        char c;
        if (n > 64 || pipe(pipe_fds) || pipe(ready_fds))
            return 1;
        for (long i = 0; i < n; i++)
            pthread_create(&t, 0, blocked, (void *)i);
        for (int i = 0; i < n; i++) // each thread's byte: its tid is written
            read(ready_fds[0], &c, 1);
        for (int i = 0; i < n; i++)
            while (!in_read(tids[i]))
                sched_yield();
        syscall(SYS_exit_group, 5);
    }
    if (!strcmp(argv[1], "forks")) {
        for (int i = 0; i < n; i++) {
            pid_t pid = fork();
            if (pid == 0) {
                syscall(SYS_getppid);
                _exit(0);
            }
            waitpid(pid, 0, 0);
        }
        return 0;
    }
    if (!strcmp(argv[1], "nocall")) {
        for (int i = 0; i < n; i++)
            syscall(-1);
        return 0;
    }
    return 2;
}
