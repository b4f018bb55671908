// An x86_64 program without a C library (gcc -nostdlib -static -ffreestanding): exactly
// three getppid(2) and exit_group(0), so its calls are known by construction (with its
// execve, five). The fidelity tests use it to learn what strace's child does before its
// execve (strace does not count that; sikte-tui does, it is a real process's work), and as
// the last, 64-bit phase of a 64->32->64 exec chain.
static long sys1(long nr, long a)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a) : "rcx", "r11", "memory");
    return ret;
}

void _start(void)
{
    for (int i = 0; i < 3; i++)
        sys1(110, 0); // getppid
    sys1(231, 0);     // exit_group
    for (;;)
        ;
}
