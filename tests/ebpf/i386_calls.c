// An i386 program with its C library (gcc -m32): 100 getppid (i386 nr 64, which the x86_64
// table names semget), 10 lseek on a regular file (the C library's _llseek, nr 140; x86_64:
// getpriority), 5 opens of a missing path (ENOENT), the loader's mmap2 (nr 192; x86_64:
// lgetxattr). With arguments it then execs them (argv[1] with its arguments): the middle
// phase of a 64->32->64 exec chain.
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    for (int i = 0; i < 100; i++)
        getppid();
    int fd = open("/proc/self/exe", O_RDONLY);
    if (fd < 0)
        return 1;
    for (int i = 0; i < 10; i++)
        lseek(fd, i, SEEK_SET);
    close(fd);
    for (int i = 0; i < 5; i++)
        if (open("/nonexistent/sikte-i386-calls", O_RDONLY) >= 0)
            return 1;
    if (argc > 1) {
        execv(argv[1], argv + 1);
        return 2;
    }
    return 0;
}
