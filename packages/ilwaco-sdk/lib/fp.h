/* Private floating-point helpers that avoid x87 conversions between double and 64-bit
 * integers (gcc -m32 would emit fildll/fistpll); everything here is scalar SSE2. */
#ifndef ILWACO_FP_H
#define ILWACO_FP_H
#include <stdint.h>

static inline uint64_t fp_bits(double d) {
    union { double d; uint64_t u; } v = {d};
    return v.u;
}
static inline double fp_from_bits(uint64_t u) {
    union { uint64_t u; double d; } v = {u};
    return v.d;
}
static inline double fp_u32(uint32_t x) { return (double)(int32_t)(x >> 1) * 2.0 + (double)(int32_t)(x & 1); }
/** Nearest double to x (hi * 2^32 is exact, so only the final addition rounds). */
static inline double fp_u64(uint64_t x) { return fp_u32((uint32_t)(x >> 32)) * 4294967296.0 + fp_u32((uint32_t)x); }
/** Truncate a finite non-negative double below 2^64 toward zero. */
static inline uint64_t fp_trunc_u64(double d) {
    uint64_t u = fp_bits(d);
    int e = (int)((u >> 52) & 0x7ff) - 1075;
    uint64_t m = (u & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1) << 52);
    if ((u >> 52 & 0x7ff) == 0) return 0;
    if (e >= 12) return UINT64_MAX;
    if (e >= 0) return m << e;
    if (e <= -64) return 0;
    return m >> -e;
}
static inline int fp_isnan(double d) { return (fp_bits(d) & ~(UINT64_C(1) << 63)) > UINT64_C(0x7ff0000000000000); }
static inline int fp_isinf(double d) { return (fp_bits(d) & ~(UINT64_C(1) << 63)) == UINT64_C(0x7ff0000000000000); }
static inline int fp_signbit(double d) { return (int)(fp_bits(d) >> 63); }

/** 10^n: exact for 0 <= n <= 22, otherwise by repeated multiplication (relative error ~n ulp). */
static inline double fp_pow10(int n) {
    static const double exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (n >= 0 && n <= 22) return exact[n];
    double r = 1.0;
    int neg = n < 0;
    if (neg) n = -n;
    double p = 10.0;
    while (n) {
        if (n & 1) r *= p;
        p *= p;
        n >>= 1;
    }
    return neg ? 1.0 / r : r;
}
/** x * 10^n without overflowing the intermediate power (n may be beyond +-308). */
static inline double fp_scale10(double x, int n) {
    while (n > 300) {
        x *= 1e300;
        n -= 300;
    }
    while (n < -300) {
        x /= 1e300;
        n += 300;
    }
    if (n >= 0) return x * fp_pow10(n);
    if (n >= -22) return x / fp_pow10(-n);
    return x / fp_pow10(-n);
}
#endif
