// An i386 program without a C library (gcc -m32 -nostdlib -static -ffreestanding): it prints
// "ready", waits for a byte on stdin, makes one execve(2) of a missing program through
// int $0x80 with three environment variables (4-byte pointers; the i386 numbers: write 4,
// read 3, execve 11, exit 1) and exits 0 when it failed with ENOENT.
static const char path[] = "/nonexistent/sikte-i386-exec";
static const char *const args[] = {"sikte-i386-exec", "one", 0};
static const char *const env[] = {"A=1", "B=2", "C=3", 0};

static long sys3(long nr, long a, long b, long c)
{
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    return ret;
}

void _start(void)
{
    char c;
    sys3(4, 1, (long)"ready\n", 6);
    sys3(3, 0, (long)&c, 1);
    long r = sys3(11, (long)path, (long)args, (long)env);
    sys3(1, r == -2 ? 0 : 1, 0, 0);
    for (;;)
        ;
}
