/* assert.h: on failure prints "assertion failed: EXPR (file:line, function)" to the console
 * and aborts the VM (exit status 134). Disabled by NDEBUG. */
#undef assert
#ifdef NDEBUG
#define assert(e) ((void)0)
#else
__attribute__((noreturn)) void __ilwaco_assert_fail(const char *expr, const char *file, int line, const char *func);
#define assert(e) ((e) ? (void)0 : __ilwaco_assert_fail(#e, __FILE__, __LINE__, __func__))
#endif
#ifndef __cplusplus
#define static_assert _Static_assert
#endif
