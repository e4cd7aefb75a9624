/*
 * The printf engine shared by printf, fprintf, snprintf, sprintf and their v-variants.
 * Flags "-+ #0", width and precision (including '*'), lengths hh h l ll z j t L,
 * conversions d i u x X o c s p n % f F e E g G. Floating-point limits are documented in
 * stdio.h; precisions above 500 are treated as 500.
 */
#include "fp.h"
#include "internal.h"
#include <stdio.h>
#include <string.h>

struct spec {
    int left, plus, space, alt, zero;
    int width, prec; /* prec < 0: none */
    int upper;
};

struct out {
    ilwaco_emit_fn emit;
    void *ctx;
    int count;
};

static void put(struct out *o, const char *s, size_t n) {
    if (n) o->emit(o->ctx, s, n);
    o->count += (int)n;
}

static void pad(struct out *o, char c, int n) {
    char chunk[16];
    memset(chunk, c, sizeof chunk);
    while (n > 0) {
        int k = n > 16 ? 16 : n;
        put(o, chunk, (size_t)k);
        n -= k;
    }
}

/* Emit prefix (sign, 0x), `zeros` zeros, then body, padded to the field width. */
static void field(struct out *o, const struct spec *sp, const char *prefix, int zeros, const char *body, int blen, int zero_pad_ok) {
    int plen = (int)strlen(prefix);
    int total = plen + zeros + blen;
    int fill = sp->width > total ? sp->width - total : 0;
    if (!sp->left && !(sp->zero && zero_pad_ok)) pad(o, ' ', fill);
    put(o, prefix, (size_t)plen);
    if (!sp->left && sp->zero && zero_pad_ok) pad(o, '0', fill);
    pad(o, '0', zeros);
    put(o, body, (size_t)blen);
    if (sp->left) pad(o, ' ', fill);
}

static void fmt_int(struct out *o, const struct spec *sp, unsigned long long v, int neg, int base, int conv) {
    char buf[24];
    int n = 0;
    const char *digits = conv == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
    char *end = buf + sizeof buf;
    while (v) {
        end[-++n] = digits[v % (unsigned)base];
        v /= (unsigned)base;
    }
    char *body = end - n;
    int zeros = sp->prec > n ? sp->prec - n : 0;
    if (sp->prec < 0 && n == 0) zeros = 1; /* plain zero */
    char prefix[3] = {0, 0, 0};
    if (conv == 'd' || conv == 'i') {
        if (neg) prefix[0] = '-';
        else if (sp->plus) prefix[0] = '+';
        else if (sp->space) prefix[0] = ' ';
    } else if (sp->alt && base == 16 && n > 0) {
        prefix[0] = '0';
        prefix[1] = (char)(conv == 'X' ? 'X' : 'x');
    } else if (sp->alt && base == 8 && zeros == 0) {
        zeros = 1;
    }
    field(o, sp, prefix, zeros, body, n, sp->prec < 0);
}

/* ---- floating point ---- */

/* floor(log10(x)) for finite x > 0. */
static int decimal_exponent(double x) {
    int e2 = (int)((fp_bits(x) >> 52) & 0x7ff) - 1023;
    int e = (e2 * 78913) >> 18; /* floor(e2 * log10(2)) */
    while (x >= fp_scale10(1.0, e + 1)) e++;
    while (x < fp_scale10(1.0, e)) e--;
    return e;
}

/* Dekker's exact product without FMA: a*b == *hi + *lo exactly (no overflow assumed). */
static void two_product(double a, double b, double *hi, double *lo) {
    const double split = 134217729.0; /* 2^27 + 1 */
    double p = a * b;
    double ca = split * a, ah = ca - (ca - a), al = a - ah;
    double cb = split * b, bh = cb - (cb - b), bl = b - bh;
    *hi = p;
    *lo = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}

/*
 * Nearest integer to the exact value p + e (p >= 0 below 2^63, |e| a few units at most),
 * ties to even. e carries the rounding error of computing p, so that halfway cases are
 * decided on the exact decimal value, as glibc does.
 */
static uint64_t round_exact(double p, double e) {
    uint64_t f = fp_trunc_u64(p);
    double r = p - fp_u64(f); /* exact */
    while (r + e >= 1.0) {
        f++;
        r -= 1.0;
    }
    while (r + e < 0.0 && f > 0) {
        f--;
        r += 1.0;
    }
    double d = (r - 0.5) + e; /* r - 0.5 is exact; the sum has the sign of the exact value */
    if (d > 0.0 || (d == 0.0 && (f & 1))) f++;
    return f;
}

/*
 * x * 10^k as a double-double: *v + *err (about 100 bits). Scales in exact steps of at most
 * 10^22 (exactly representable), carrying each step's rounding error, so that the digits of
 * ordinary numbers come out as from the exact decimal expansion.
 */
static void scale10_exact(double x, int k, double *v, double *err) {
    double hi = x, lo = 0.0;
    while (k > 0) {
        int step = k > 22 ? 22 : k;
        double P = fp_pow10(step), ph, pl;
        two_product(hi, P, &ph, &pl);
        hi = ph;
        lo = pl + lo * P;
        k -= step;
    }
    while (k < 0) {
        int step = -k > 22 ? 22 : -k;
        double P = fp_pow10(step), ph, pl;
        double q = hi / P;
        two_product(q, P, &ph, &pl);
        lo = (((hi - ph) - pl) + lo) / P;
        hi = q;
        k += step;
    }
    *v = hi;
    *err = lo;
}

static const uint64_t pow10_u64[18] = {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull, 100000000ull,
    1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull, 10000000000000ull, 100000000000000ull,
    1000000000000000ull, 10000000000000000ull, 100000000000000000ull};

/*
 * The first `nsig` (1..17) significant decimal digits of x > 0, rounded; `e` is
 * floor(log10(x)) on entry and the exponent of the first digit on return (it grows by one
 * when rounding carries, e.g. 9.99 -> 10.0).
 */
static void sig_digits(double x, int nsig, int *e, char *digits) {
    double scaled, err;
    scale10_exact(x, nsig - 1 - *e, &scaled, &err);
    uint64_t r = round_exact(scaled, err);
    if (r >= pow10_u64[nsig]) {
        r /= 10;
        ++*e;
    }
    if (r < pow10_u64[nsig - 1]) r = pow10_u64[nsig - 1]; /* guard against pow10 error */
    for (int i = nsig - 1; i >= 0; i--) {
        digits[i] = (char)('0' + r % 10);
        r /= 10;
    }
}

/* Does x * 10^prec (below 1) round to 1 rather than 0? */
static int round_nonzero(double x, int prec) {
    double v, err;
    scale10_exact(x, prec, &v, &err);
    return round_exact(v, err) != 0;
}

#define FBUF 1100
#define MAXPREC 500

/* Write fixed notation for digits d[0..nd) with first-digit exponent e and `frac` fraction digits. */
static int place_fixed(char *buf, const char *d, int nd, int e, int frac, int alt) {
    int n = 0;
    int k = e >= 0 ? e : 0;
    for (; k >= 0; k--) {
        int idx = e - k;
        buf[n++] = (idx >= 0 && idx < nd) ? d[idx] : '0';
    }
    if (frac > 0 || alt) buf[n++] = '.';
    for (k = -1; k >= -frac; k--) {
        int idx = e - k;
        buf[n++] = (idx >= 0 && idx < nd) ? d[idx] : '0';
    }
    return n;
}

static int place_exp(char *buf, const char *d, int nd, int e, int frac, int alt, int upper) {
    int n = 0;
    buf[n++] = d[0];
    if (frac > 0 || alt) buf[n++] = '.';
    for (int i = 1; i <= frac; i++) buf[n++] = i < nd ? d[i] : '0';
    buf[n++] = upper ? 'E' : 'e';
    buf[n++] = e < 0 ? '-' : '+';
    int a = e < 0 ? -e : e;
    if (a >= 100) buf[n++] = (char)('0' + a / 100);
    buf[n++] = (char)('0' + a / 10 % 10);
    buf[n++] = (char)('0' + a % 10);
    return n;
}

static void fmt_float(struct out *o, const struct spec *sp, double x, int conv) {
    char buf[FBUF];
    char digits[17];
    char prefix[2] = {0, 0};
    if (fp_signbit(x)) {
        prefix[0] = '-';
        x = -x;
    } else if (sp->plus) {
        prefix[0] = '+';
    } else if (sp->space) {
        prefix[0] = ' ';
    }
    int upper = conv == 'F' || conv == 'E' || conv == 'G';
    if (fp_isnan(x) || fp_isinf(x)) {
        const char *s = fp_isnan(x) ? (upper ? "NAN" : "nan") : (upper ? "INF" : "inf");
        field(o, sp, prefix, 0, s, 3, 0);
        return;
    }
    int prec = sp->prec < 0 ? 6 : sp->prec > MAXPREC ? MAXPREC : sp->prec;
    int lower = conv | 0x20;
    int n;
    if (lower == 'f') {
        int e = 0, nd = 0;
        if (x != 0.0) {
            e = decimal_exponent(x);
            int nsig = e + 1 + prec;
            if (nsig > 17) nsig = 17;
            if (nsig >= 1) {
                sig_digits(x, nsig, &e, digits);
                nd = nsig;
            } else if (nsig == 0 && round_nonzero(x, prec)) {
                digits[0] = '1';
                nd = 1;
                e = -prec;
            }
        }
        n = place_fixed(buf, digits, nd, nd ? e : 0, prec, sp->alt);
    } else if (lower == 'e') {
        int e = 0, nsig = prec + 1 > 17 ? 17 : prec + 1;
        if (x != 0.0) {
            e = decimal_exponent(x);
            sig_digits(x, nsig, &e, digits);
        } else {
            memset(digits, '0', (size_t)nsig);
        }
        n = place_exp(buf, digits, nsig, e, prec, sp->alt, upper);
    } else { /* g */
        int p = prec == 0 ? 1 : prec;
        int nsig = p > 17 ? 17 : p, e = 0;
        if (x != 0.0) {
            e = decimal_exponent(x);
            sig_digits(x, nsig, &e, digits);
        } else {
            memset(digits, '0', (size_t)nsig);
        }
        int fixed = p > e && e >= -4;
        int frac = fixed ? p - 1 - e : p - 1;
        if (!sp->alt) {
            /* Drop trailing zeros: count the significant digits that are not zero at the end. */
            int last = nsig - 1;
            while (last > 0 && digits[last] == '0') last--;
            int needed = fixed ? last - e : last;
            if (needed < frac) frac = needed < 0 ? 0 : needed;
        }
        n = fixed ? place_fixed(buf, digits, nsig, e, frac, sp->alt) : place_exp(buf, digits, nsig, e, frac, sp->alt, upper);
    }
    field(o, sp, prefix, 0, buf, n, 1);
}

int __ilwaco_vformat(ilwaco_emit_fn emit, void *ctx, const char *fmt, va_list ap) {
    struct out o = {emit, ctx, 0};
    while (*fmt) {
        if (*fmt != '%') {
            const char *start = fmt;
            while (*fmt && *fmt != '%') fmt++;
            put(&o, start, (size_t)(fmt - start));
            continue;
        }
        const char *conv_start = fmt++;
        struct spec sp = {0, 0, 0, 0, 0, 0, -1, 0};
        for (;; fmt++) {
            if (*fmt == '-') sp.left = 1;
            else if (*fmt == '+') sp.plus = 1;
            else if (*fmt == ' ') sp.space = 1;
            else if (*fmt == '#') sp.alt = 1;
            else if (*fmt == '0') sp.zero = 1;
            else break;
        }
        if (*fmt == '*') {
            sp.width = va_arg(ap, int);
            if (sp.width < 0) {
                sp.left = 1;
                sp.width = -sp.width;
            }
            fmt++;
        } else {
            while (*fmt >= '0' && *fmt <= '9') sp.width = sp.width * 10 + (*fmt++ - '0');
        }
        if (*fmt == '.') {
            fmt++;
            sp.prec = 0;
            if (*fmt == '*') {
                sp.prec = va_arg(ap, int);
                if (sp.prec < 0) sp.prec = -1;
                fmt++;
            } else {
                while (*fmt >= '0' && *fmt <= '9') sp.prec = sp.prec * 10 + (*fmt++ - '0');
            }
        }
        /* Length: 0 int, 'H' char, 'h' short, 'l' long, 'q' long long, 'L' long double. */
        int len = 0;
        switch (*fmt) {
        case 'h':
            len = 'h';
            if (*++fmt == 'h') {
                len = 'H';
                fmt++;
            }
            break;
        case 'l':
            len = 'l';
            if (*++fmt == 'l') {
                len = 'q';
                fmt++;
            }
            break;
        case 'j': case 'q': len = 'q'; fmt++; break;
        case 'z': case 't': len = 'l'; fmt++; break; /* size_t, ptrdiff_t: 32-bit */
        case 'L': len = 'L'; fmt++; break;
        }
        int conv = *fmt;
        if (conv) fmt++;
        switch (conv) {
        case 'd':
        case 'i': {
            long long v;
            if (len == 'q') v = va_arg(ap, long long);
            else if (len == 'l') v = va_arg(ap, long);
            else v = va_arg(ap, int);
            if (len == 'h') v = (short)v;
            if (len == 'H') v = (signed char)v;
            unsigned long long mag = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
            fmt_int(&o, &sp, mag, v < 0, 10, conv);
            break;
        }
        case 'u': case 'x': case 'X': case 'o': {
            unsigned long long v;
            if (len == 'q') v = va_arg(ap, unsigned long long);
            else if (len == 'l') v = va_arg(ap, unsigned long);
            else v = va_arg(ap, unsigned);
            if (len == 'h') v = (unsigned short)v;
            if (len == 'H') v = (unsigned char)v;
            fmt_int(&o, &sp, v, 0, conv == 'u' ? 10 : conv == 'o' ? 8 : 16, conv);
            break;
        }
        case 'p': {
            void *p = va_arg(ap, void *);
            if (!p) {
                field(&o, &sp, "", 0, "(nil)", 5, 0);
            } else {
                struct spec ps = sp;
                ps.alt = 1;
                fmt_int(&o, &ps, (uintptr_t)p, 0, 16, 'x');
            }
            break;
        }
        case 'c': {
            char c = (char)va_arg(ap, int);
            field(&o, &sp, "", 0, &c, 1, 0);
            break;
        }
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s) s = "(null)";
            int n = (int)(sp.prec >= 0 ? strnlen(s, (size_t)sp.prec) : strlen(s));
            field(&o, &sp, "", 0, s, n, 0);
            break;
        }
        case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': {
            double d = len == 'L' ? (double)va_arg(ap, long double) : va_arg(ap, double);
            fmt_float(&o, &sp, d, conv);
            break;
        }
        case 'n': {
            if (len == 'q') *va_arg(ap, long long *) = o.count;
            else if (len == 'h') *va_arg(ap, short *) = (short)o.count;
            else if (len == 'H') *va_arg(ap, signed char *) = (signed char)o.count;
            else *va_arg(ap, int *) = o.count;
            break;
        }
        case '%':
            put(&o, "%", 1);
            break;
        default:
            /* Unknown conversion: print it as written. */
            put(&o, conv_start, (size_t)(fmt - conv_start));
            break;
        }
    }
    return o.count;
}

/* ---- string sinks ---- */

struct strbuf {
    char *buf;
    size_t size, len;
};

static void str_emit(void *ctx, const char *s, size_t n) {
    struct strbuf *b = ctx;
    if (b->size > 0 && b->len < b->size - 1) {
        size_t room = b->size - 1 - b->len;
        memcpy(b->buf + b->len, s, n < room ? n : room);
    }
    b->len += n;
}

int vsnprintf(char *restrict buf, size_t size, const char *restrict fmt, va_list ap) {
    struct strbuf b = {buf, size, 0};
    int n = __ilwaco_vformat(str_emit, &b, fmt, ap);
    if (size > 0) buf[b.len < size - 1 ? b.len : size - 1] = 0;
    return n;
}

int snprintf(char *restrict buf, size_t size, const char *restrict fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

int vsprintf(char *restrict buf, const char *restrict fmt, va_list ap) { return vsnprintf(buf, (size_t)-1 / 2, fmt, ap); }

int sprintf(char *restrict buf, const char *restrict fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsprintf(buf, fmt, ap);
    va_end(ap);
    return n;
}
