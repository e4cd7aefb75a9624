/* setjmp.h: non-local jumps (lib/setjmp.S). Saves ebx, esi, edi, ebp, esp and the return
 * address; x87/SSE control state is not saved. Jumping into a thread other than the caller's
 * is undefined. longjmp(env, 0) makes setjmp return 1. */
#ifndef ILWACO_SETJMP_H
#define ILWACO_SETJMP_H
typedef unsigned long jmp_buf[6];
int setjmp(jmp_buf env) __attribute__((returns_twice));
__attribute__((noreturn)) void longjmp(jmp_buf env, int val);
#endif
