/* Workloads with exactly known decoded syscalls, for tests/ebpf/test_record_decoded.py.
 *
 *   record_workload enoent N DIR    N failed opens of N distinct missing paths DIR/sikte-missing-I,
 *                                    then one of DIR/sikte odd "name\n (a space, a quote, a newline)
 *   record_workload mix PORT DIR    a failed openat, a failed stat, a connect to 127.0.0.1:PORT
 *                                    (closed), a failed execve, a write of "sikte-pipe\n" to a pipe
 *   record_workload reuse K L DIR   writes K bytes to DIR/a, closes it, opens DIR/b (the same
 *                                    descriptor number) and writes L bytes to it, in 1000-byte calls
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int enoent(int n, const char *dir) {
    char path[4096];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/sikte-missing-%d", dir, i);
        if (open(path, O_RDONLY) >= 0) return 1;
    }
    snprintf(path, sizeof path, "%s/sikte odd \"name\n", dir);
    return open(path, O_RDONLY) >= 0;
}

static int mix(int port, const char *dir) {
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/sikte-missing-mix", dir);
    if (open(path, O_RDONLY | O_CLOEXEC) >= 0) return 1;
    snprintf(path, sizeof path, "%s/sikte-stat-missing", dir);
    if (stat(path, &st) == 0) return 1;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&addr, sizeof addr) == 0) return 1;
    close(s);
    snprintf(path, sizeof path, "%s/sikte-noprog", dir);
    char *argv[] = {path, "one", NULL};
    char *envp[] = {"A=1", NULL};
    execve(path, argv, envp);
    int fds[2];
    if (pipe(fds)) return 1;
    if (write(fds[1], "sikte-pipe\n", 11) != 11) return 1;
    return 0;
}

static int fill(const char *path, long bytes) {
    static char chunk[1000];
    memset(chunk, 'x', sizeof chunk);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return -1;
    for (long left = bytes; left > 0;) {
        long n = left < (long)sizeof chunk ? left : (long)sizeof chunk;
        if (write(fd, chunk, n) != n) return -1;
        left -= n;
    }
    return fd;
}

static int reuse(long k, long l, const char *dir) {
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    int first = fill(a, k);
    if (first < 0 || close(first)) return 1;
    int second = fill(b, l);
    if (second != first) return 2;  /* the test is about a reused number */
    return close(second) != 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "enoent")) return enoent(atoi(argv[2]), argv[3]);
    if (argc == 4 && !strcmp(argv[1], "mix")) return mix(atoi(argv[2]), argv[3]);
    if (argc == 5 && !strcmp(argv[1], "reuse"))
        return reuse(atol(argv[2]), atol(argv[3]), argv[4]);
    fprintf(stderr, "usage: record_workload enoent N DIR | mix PORT DIR | reuse K L DIR\n");
    return 64;
}
