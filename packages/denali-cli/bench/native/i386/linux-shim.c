/*
 * Linux i386 stand-in for Ilwaco's startup and console driver, so that `pnpm bench:emu` can
 * run the very same service code (the service's sources linked with the same libilwaco.a)
 * natively and under qemu-i386. Only what the compute benchmarks use is provided: main's
 * result is the exit status, stdout/stderr go to fds 1/2 through `int $0x80` (Linux i386
 * syscall ABI). A service that calls exit(), malloc() or threads is out of scope: those
 * reach Denali hypercalls (`out`), which Linux answers with SIGSEGV.
 */
#include <stddef.h>

int main(int argc, char **argv);
void __ilwaco_stdio_flush_all(void);

enum { SYS_exit_group = 252, SYS_read = 3, SYS_write = 4 };

static long sys3(long n, long a, long b, long c) {
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(n), "b"(a), "c"(b), "d"(c) : "memory");
    return r;
}

/* The kernel enters with argc at (%esp) and argv right above it. */
__asm__(".globl _start\n"
        "_start:\n"
        "  xorl %ebp, %ebp\n"
        "  movl (%esp), %eax\n"
        "  leal 4(%esp), %edx\n"
        "  andl $-16, %esp\n"
        "  subl $8, %esp\n"
        "  pushl %edx\n"
        "  pushl %eax\n"
        "  call __linux_start\n"
        "  hlt\n");

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        long w = sys3(SYS_write, fd, (long)p, (long)n);
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

size_t ilwaco_console_write(const void *buf, size_t len) {
    write_all(1, buf, len);
    return len;
}

size_t ilwaco_console_read(void *buf, size_t len, int *eof) {
    long r = sys3(SYS_read, 0, (long)buf, (long)len);
    if (eof) *eof = r <= 0;
    return r > 0 ? (size_t)r : 0;
}

void __ilwaco_wait_console(void) {}

void __ilwaco_fatal_write(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    write_all(2, s, n);
}

__attribute__((noreturn, used)) void __linux_start(int argc, char **argv) {
    int status = main(argc, argv);
    __ilwaco_stdio_flush_all();
    for (;;) sys3(SYS_exit_group, status, 0, 0);
}
