// Workloads for the argument-capture tests. Each prints "ready", waits for a byte on stdin
// (the test makes it a target meanwhile), does its calls, and exits 0.
//   capture_workload enoent N          openat of N distinct missing paths (ENOENT)
//   capture_workload long-path LEN     openat of a LEN-byte path (ENAMETOOLONG)
//   capture_workload fault             openat of an unreadable path pointer (EFAULT)
//   capture_workload connect PORT      connect to 127.0.0.1:PORT (closed: ECONNREFUSED)
//   capture_workload exec-missing      execve of a missing program (ENOENT)
//   capture_workload exec-true         execve of /bin/true (succeeds)
//   capture_workload exec-env N        execve of a missing program with N variables
//   capture_workload exec-env-null     execve of a missing program with a NULL envp
//   capture_workload exec-env-open N   execve of a missing program whose envp has N
//                                      variables and no NULL before an unmapped page
//   capture_workload reuse A B K L     writes K bytes to A, closes it, opens B (the same
//                                      descriptor number), writes L bytes, prints "written",
//                                      waits for another byte, exits with B still open
//   capture_workload dup-pipe          writes 5 bytes to /dev/null on descriptor N, dup2s
//                                      stdin onto N, makes a pipe, writes 3 bytes into it
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

// An execve of a missing program with n variables: NULL-terminated, or (open) ending at an
// unmapped page, so the vector cannot be read past its n pointers.
static int exec_env(long n, int open)
{
    long page = sysconf(_SC_PAGESIZE);
    long bytes = (n + 1) * sizeof(char *);
    long pages = (bytes + page - 1) / page + 1;
    char *map = mmap(NULL, pages * page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED || munmap(map + (pages - 1) * page, page) != 0)
        return 66;
    char **env = (char **)(map + (pages - 1) * page) - (open ? n : n + 1);
    for (long i = 0; i < n; i++)
        env[i] = "SIKTE=1";
    if (!open)
        env[n] = NULL;
    char *args[] = {"sikte-missing", NULL};
    syscall(SYS_execve, "/nonexistent/sikte-missing", args, env);
    return 0;
}

static void wait_byte(const char *say)
{
    char c;
    printf("%s\n", say);
    fflush(stdout);
    if (read(0, &c, 1) != 1)
        exit(65);
}

static void fill(int fd, long n)
{
    char buf[4096];
    memset(buf, 'x', sizeof(buf));
    while (n > 0) {
        long chunk = n < (long)sizeof(buf) ? n : (long)sizeof(buf);
        if (write(fd, buf, chunk) != chunk)
            exit(66);
        n -= chunk;
    }
}

static int reuse(char **argv)
{
    int a = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    fill(a, atol(argv[4]));
    close(a);
    int b = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (b != a)
        return 67;
    fill(b, atol(argv[5]));
    printf("%d\n", b);
    wait_byte("written");
    return 0;
}

static int dup_pipe(void)
{
    int n = open("/dev/null", O_WRONLY);
    fill(n, 5);
    if (dup2(0, n) != n)
        return 68;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return 69;
    fill(p[1], 3);
    printf("%d %d %d\n", n, p[0], p[1]);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 64;
    const char *mode = argv[1];
    char path[8192];
    wait_byte("ready");
    if (!strcmp(mode, "enoent")) {
        for (long i = 0; i < atol(argv[2]); i++) {
            snprintf(path, sizeof(path), "/nonexistent/sikte-capture-%ld", i);
            syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);
        }
    } else if (!strcmp(mode, "long-path")) {
        long len = atol(argv[2]);
        memset(path, 'p', len);
        path[0] = '/';
        path[len] = 0;
        syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);
    } else if (!strcmp(mode, "fault")) {
        syscall(SYS_openat, AT_FDCWD, (char *)8, O_RDONLY);
    } else if (!strcmp(mode, "connect")) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        connect(s, (struct sockaddr *)&sa, sizeof(sa));
    } else if (!strcmp(mode, "exec-missing")) {
        char *args[] = {"sikte-missing", "one", "two words", NULL};
        char *env[] = {NULL};
        syscall(SYS_execve, "/nonexistent/sikte-missing", args, env);
    } else if (!strcmp(mode, "exec-true")) {
        char *args[] = {"true", "--sikte", NULL};
        char *env[] = {NULL};
        syscall(SYS_execve, "/bin/true", args, env);
        return 70;
    } else if (!strcmp(mode, "exec-env") && argc > 2) {
        return exec_env(atol(argv[2]), 0);
    } else if (!strcmp(mode, "exec-env-null")) {
        char *args[] = {"sikte-missing", NULL};
        syscall(SYS_execve, "/nonexistent/sikte-missing", args, NULL);
    } else if (!strcmp(mode, "exec-env-open") && argc > 2) {
        return exec_env(atol(argv[2]), 1);
    } else if (!strcmp(mode, "dup-pipe")) {
        return dup_pipe();
    } else if (!strcmp(mode, "reuse") && argc > 5) {
        return reuse(argv);
    } else {
        return 64;
    }
    return 0;
}
