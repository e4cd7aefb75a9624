/* Console driver: the CONSOLE_WRITE and CONSOLE_READ hypercalls (non-blocking). */
#include "internal.h"

size_t ilwaco_console_write(const void *buf, size_t len) {
    const char *p = buf;
    size_t left = len;
    while (left > 0) {
        struct denali_console_args a = {(uint32_t)(uintptr_t)p, (uint32_t)left, 0, 0};
        denali_hypercall(DENALI_HYPERCALL_CONSOLE_WRITE, &a);
        if (a.done == 0 || a.done > left) {
            /* The console refuses bytes (closed): drop the rest rather than spin. */
            break;
        }
        p += a.done;
        left -= a.done;
    }
    return len;
}

size_t ilwaco_console_read(void *buf, size_t len, int *eof) {
    struct denali_console_args a = {(uint32_t)(uintptr_t)buf, (uint32_t)len, 0, 0};
    denali_hypercall(DENALI_HYPERCALL_CONSOLE_READ, &a);
    if (eof) *eof = a.eof != 0;
    return a.done <= len ? a.done : len;
}

void __ilwaco_fatal_write(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    ilwaco_console_write(s, n);
}
