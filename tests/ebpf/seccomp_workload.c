// A process under a seccomp filter (as Docker's default profile and systemd's
// SystemCallFilter= put processes): the kernel runs the filter before the raw_syscalls
// sys_enter tracepoint, so a call the filter refuses never reaches sys_enter, only sys_exit.
//
//   seccomp_workload              getppid refused with EPERM: 100 getppid (each fails), then
//                                 50 getpid
//   seccomp_workload trap         getppid raises SIGSYS (SECCOMP_RET_TRAP), handled; the call
//                                 returns its own number (the kernel rolls the registers back
//                                 for the handler): 100 times, then 50 getpid
//   seccomp_workload kill         50 getpid, then getppid kills the process
//                                 (SECCOMP_RET_KILL_PROCESS: the call exits once, then SIGSYS)
//   seccomp_workload kill-thread  the same with SECCOMP_RET_KILL_THREAD (the only thread)
// Built with gcc -m32 its calls are i386 ones (the filter checks AUDIT_ARCH_I386).
//
// Exit status 0 when each refused getppid failed with EPERM (errno mode), else 1.
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__i386__) // gcc -m32: the calls are compat ones (i386 numbers, ABI_COMPAT)
#define ARCH AUDIT_ARCH_I386
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#else
#error "no AUDIT_ARCH for this architecture"
#endif

static volatile sig_atomic_t trapped;

static void on_sigsys(int sig)
{
    (void)sig;
    trapped++;
}

static int install(unsigned int action)
{
    struct sock_filter filter[] = {
        // Another architecture's call (an i386 int 0x80 has other numbers): allowed.
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, action),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof(filter) / sizeof(filter[0]), .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "errno";
    unsigned int action = SECCOMP_RET_ERRNO | EPERM;
    if (strcmp(mode, "kill") == 0)
        action = SECCOMP_RET_KILL_PROCESS;
    else if (strcmp(mode, "kill-thread") == 0)
        action = SECCOMP_RET_KILL_THREAD;
    else if (strcmp(mode, "trap") == 0)
        action = SECCOMP_RET_TRAP;
    if (strcmp(mode, "trap") == 0)
        signal(SIGSYS, on_sigsys);
    if (install(action) != 0) {
        perror("seccomp");
        return 2;
    }
    int bad = 0;
    if (action == (SECCOMP_RET_ERRNO | EPERM) || action == SECCOMP_RET_TRAP) {
        for (int i = 0; i < 100; i++) {
            errno = 0;
            long r = syscall(__NR_getppid);
            if (action == (SECCOMP_RET_ERRNO | EPERM) && (r != -1 || errno != EPERM))
                bad = 1;
        }
        if (action == SECCOMP_RET_TRAP && trapped != 100)
            bad = 1;
    }
    for (int i = 0; i < 50; i++)
        syscall(__NR_getpid);
    if (action == SECCOMP_RET_KILL_PROCESS || action == SECCOMP_RET_KILL_THREAD)
        syscall(__NR_getppid); // never returns: the process dies of SIGSYS
    return bad;
}
