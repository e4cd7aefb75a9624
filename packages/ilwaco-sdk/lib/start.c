/* C half of the startup code: called by _start (lib/crt0.S) with a 16-byte aligned stack. */
#include "internal.h"
#include <stdlib.h>

int main(int argc, char **argv);

/* Constructors (__attribute__((constructor)), C++ globals), collected by lib/ilwaco.ld. */
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);

/* The boot arguments are ARGC NUL-terminated strings back to back at BOOTARGS_ADDR
 * (BOOTARGS_LEN bytes in all); argv[0] is the service name. */
__attribute__((noreturn)) void __ilwaco_start(void) {
    __ilwaco_malloc_init();
    __ilwaco_thread_init();
    for (void (**f)(void) = __init_array_start; f < __init_array_end; f++) (*f)();
    uint32_t argc = DENALI_VREG_RO_U32(DENALI_VREG_RO_ARGC);
    const char *p = (const char *)(uintptr_t)DENALI_VREG_RO_U32(DENALI_VREG_RO_BOOTARGS_ADDR);
    uint32_t len = DENALI_VREG_RO_U32(DENALI_VREG_RO_BOOTARGS_LEN);
    if (argc > len) argc = len; /* every argument takes at least its NUL */
    char **argv = malloc((argc + 1) * sizeof *argv);
    static char *empty_argv[1];
    if (!argv) {
        argv = empty_argv;
        argc = 0;
    }
    const char *end = p + len;
    uint32_t n = 0;
    while (n < argc && p < end) {
        argv[n++] = (char *)p;
        while (p < end && *p) p++;
        p++;
    }
    argv[n] = 0;
    exit(main((int)n, argv));
}
