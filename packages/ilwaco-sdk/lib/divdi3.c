/*
 * The integer helpers gcc -m32 calls instead of inline code (normally from libgcc, which
 * does not exist for i386 here): 64-bit division and modulo, bit counting, shifts, compare.
 * Nothing in this file may use a 64-bit '/', '%' or a __builtin that would call back into
 * these functions; 64-bit division is done with 32-bit `divl` steps and shift-subtract.
 */
#include <stdint.h>

typedef uint64_t u64;
typedef int64_t i64;
typedef uint32_t u32;

/* (hi:lo) / d with hi < d, so the quotient fits in 32 bits. */
static inline u32 divl(u32 hi, u32 lo, u32 d, u32 *r) {
    u32 q, rr;
    __asm__("divl %4" : "=a"(q), "=d"(rr) : "a"(lo), "d"(hi), "rm"(d) : "cc");
    *r = rr;
    return q;
}

static inline int clz32(u32 x) {
    u32 r;
    __asm__("bsrl %1, %0" : "=r"(r) : "rm"(x) : "cc"); /* x != 0 */
    return 31 - (int)r;
}

u64 __udivmoddi4(u64 a, u64 b, u64 *rem) {
    u32 bh = (u32)(b >> 32), bl = (u32)b, ah = (u32)(a >> 32), al = (u32)a;
    if (bh == 0) {
        u32 r1, r;
        /* bl == 0 raises #DE here, exactly as a hardware divide by zero. */
        u32 qh = divl(0, ah, bl, &r1);
        u32 ql = divl(r1, al, bl, &r);
        if (rem) *rem = r;
        return ((u64)qh << 32) | ql;
    }
    if (b > a) {
        if (rem) *rem = a;
        return 0;
    }
    /* b >= 2^32, so the quotient is below 2^32: shift-subtract, at most 32 steps. */
    int shift = clz32(bh) - clz32(ah);
    b <<= shift;
    u32 q = 0;
    for (int i = 0; i <= shift; i++) {
        q <<= 1;
        if (a >= b) {
            a -= b;
            q |= 1;
        }
        b >>= 1;
    }
    if (rem) *rem = a;
    return q;
}

u64 __udivdi3(u64 a, u64 b) { return __udivmoddi4(a, b, 0); }

u64 __umoddi3(u64 a, u64 b) {
    u64 r;
    __udivmoddi4(a, b, &r);
    return r;
}

/* Signed: truncating division, remainder has the dividend's sign (C99). */
i64 __divmoddi4(i64 a, i64 b, i64 *rem) {
    int na = a < 0, nb = b < 0;
    u64 ua = na ? 0 - (u64)a : (u64)a, ub = nb ? 0 - (u64)b : (u64)b, ur;
    u64 q = __udivmoddi4(ua, ub, &ur);
    if (rem) *rem = na ? (i64)(0 - ur) : (i64)ur;
    return (na ^ nb) ? (i64)(0 - q) : (i64)q;
}

i64 __divdi3(i64 a, i64 b) { return __divmoddi4(a, b, 0); }

i64 __moddi3(i64 a, i64 b) {
    i64 r;
    __divmoddi4(a, b, &r);
    return r;
}

int __popcountsi2(u32 x) {
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0fu;
    return (int)((x * 0x01010101u) >> 24);
}
int __popcountdi2(u64 x) { return __popcountsi2((u32)x) + __popcountsi2((u32)(x >> 32)); }
int __paritysi2(u32 x) { return __popcountsi2(x) & 1; }
int __paritydi2(u64 x) { return __popcountdi2(x) & 1; }

int __clzsi2(u32 x) { return x ? clz32(x) : 32; }
int __clzdi2(u64 x) {
    u32 h = (u32)(x >> 32);
    return h ? clz32(h) : 32 + __clzsi2((u32)x);
}
int __ctzsi2(u32 x) {
    if (!x) return 32;
    u32 r;
    __asm__("bsfl %1, %0" : "=r"(r) : "rm"(x) : "cc");
    return (int)r;
}
int __ctzdi2(u64 x) {
    u32 l = (u32)x;
    return l ? __ctzsi2(l) : 32 + __ctzsi2((u32)(x >> 32));
}
int __ffssi2(u32 x) { return x ? __ctzsi2(x) + 1 : 0; }
int __ffsdi2(u64 x) { return x ? __ctzdi2(x) + 1 : 0; }

u32 __bswapsi2(u32 x) { return (x >> 24) | ((x >> 8) & 0xff00u) | ((x << 8) & 0xff0000u) | (x << 24); }
u64 __bswapdi2(u64 x) { return ((u64)__bswapsi2((u32)x) << 32) | __bswapsi2((u32)(x >> 32)); }

u64 __ashldi3(u64 a, int n) { return a << n; }
u64 __lshrdi3(u64 a, int n) { return a >> n; }
i64 __ashrdi3(i64 a, int n) { return a >> n; }
i64 __muldi3(i64 a, i64 b) { return (i64)((u64)a * (u64)b); }
i64 __negdi2(i64 a) { return (i64)(0 - (u64)a); }
/* Compare: 0 if a < b, 1 if equal, 2 if a > b. */
int __cmpdi2(i64 a, i64 b) { return a < b ? 0 : a == b ? 1 : 2; }
int __ucmpdi2(u64 a, u64 b) { return a < b ? 0 : a == b ? 1 : 2; }
