// Three threads made with the clone system call (glibc's clone(), not clone3), then a
// process made with fork() (clone without CLONE_THREAD) and one with vfork(): the tracer
// must flag exactly the three threads at their fork events.
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 3
#define STACK (64 * 1024)

static int done[THREADS];
static char stacks[THREADS][STACK] __attribute__((aligned(16)));

static int thread_main(void *arg)
{
    __atomic_store_n((int *)arg, 1, __ATOMIC_SEQ_CST);
    return 0; // glibc's clone() ends the thread alone (the exit system call)
}

int main(void)
{
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
    for (int i = 0; i < THREADS; i++)
        if (clone(thread_main, stacks[i] + STACK, flags, &done[i]) < 0)
            return 2;
    for (int i = 0; i < THREADS; i++)
        while (!__atomic_load_n(&done[i], __ATOMIC_SEQ_CST))
            sched_yield();
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    if (child < 0 || waitpid(child, NULL, 0) != child)
        return 3;
    child = vfork();
    if (child == 0)
        _exit(0);
    if (child < 0 || waitpid(child, NULL, 0) != child)
        return 4;
    return 0;
}
