/* stdlib.h: number conversion, sorting, random numbers, exit. */
#include "fp.h"
#include "internal.h"
#include <ctype.h>
#include <inttypes.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int errno;

/* Shared integer parser: returns the magnitude; *neg set for '-'; *over on overflow of `limit`. */
static unsigned long long parse_uint(const char *s, char **end, int base, int *neg, int *over, unsigned long long limit) {
    const char *p = s;
    *neg = 0;
    *over = 0;
    while (isspace((unsigned char)*p)) p++;
    if (*p == '+' || *p == '-') *neg = *p++ == '-';
    if ((base == 0 || base == 16) && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && isxdigit((unsigned char)p[2])) {
        p += 2;
        base = 16;
    } else if (base == 0) {
        base = p[0] == '0' ? 8 : 10;
    }
    if (base < 2 || base > 36) {
        errno = EINVAL;
        if (end) *end = (char *)s;
        return 0;
    }
    unsigned long long v = 0;
    const char *digits = p;
    for (;; p++) {
        int c = (unsigned char)*p, d;
        if (isdigit(c)) d = c - '0';
        else if (isalpha(c)) d = tolower(c) - 'a' + 10;
        else break;
        if (d >= base) break;
        if (v > (limit - (unsigned)d) / (unsigned)base) *over = 1;
        else v = v * (unsigned)base + (unsigned)d;
    }
    if (end) *end = (char *)(p == digits ? s : p);
    return v;
}

long long strtoll(const char *restrict s, char **restrict end, int base) {
    int neg, over;
    unsigned long long v = parse_uint(s, end, base, &neg, &over, (unsigned long long)LLONG_MAX + 1);
    if (over || (!neg && v > (unsigned long long)LLONG_MAX)) {
        errno = ERANGE;
        return neg ? LLONG_MIN : LLONG_MAX;
    }
    return neg ? (long long)(0 - v) : (long long)v;
}

unsigned long long strtoull(const char *restrict s, char **restrict end, int base) {
    int neg, over;
    unsigned long long v = parse_uint(s, end, base, &neg, &over, ULLONG_MAX);
    if (over) {
        errno = ERANGE;
        return ULLONG_MAX;
    }
    return neg ? 0 - v : v;
}

long strtol(const char *restrict s, char **restrict end, int base) {
    int neg, over;
    unsigned long long v = parse_uint(s, end, base, &neg, &over, (unsigned long long)LONG_MAX + 1);
    if (over || (!neg && v > (unsigned long long)LONG_MAX)) {
        errno = ERANGE;
        return neg ? LONG_MIN : LONG_MAX;
    }
    return neg ? (long)(0 - (unsigned long)v) : (long)v;
}

unsigned long strtoul(const char *restrict s, char **restrict end, int base) {
    int neg, over;
    unsigned long long v = parse_uint(s, end, base, &neg, &over, ULONG_MAX);
    if (over) {
        errno = ERANGE;
        return ULONG_MAX;
    }
    return neg ? 0 - (unsigned long)v : (unsigned long)v;
}

intmax_t strtoimax(const char *restrict s, char **restrict end, int base) { return strtoll(s, end, base); }
uintmax_t strtoumax(const char *restrict s, char **restrict end, int base) { return strtoull(s, end, base); }

int atoi(const char *s) { return (int)strtol(s, NULL, 10); }
long atol(const char *s) { return strtol(s, NULL, 10); }
long long atoll(const char *s) { return strtoll(s, NULL, 10); }

double strtod(const char *restrict s, char **restrict end) {
    const char *p = s;
    while (isspace((unsigned char)*p)) p++;
    int neg = 0;
    if (*p == '+' || *p == '-') neg = *p++ == '-';
    double v;
    if (strncasecmp(p, "inf", 3) == 0) {
        p += strncasecmp(p, "infinity", 8) == 0 ? 8 : 3;
        v = fp_from_bits(UINT64_C(0x7ff0000000000000));
    } else if (strncasecmp(p, "nan", 3) == 0) {
        p += 3;
        v = fp_from_bits(UINT64_C(0x7ff8000000000000));
    } else {
        uint64_t mant = 0;
        int ndig = 0, exp10 = 0, any = 0;
        for (; isdigit((unsigned char)*p); p++, any = 1) {
            if (ndig < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                if (mant) ndig++;
            } else {
                exp10++;
            }
        }
        if (*p == '.') {
            p++;
            for (; isdigit((unsigned char)*p); p++, any = 1) {
                if (ndig < 19) {
                    mant = mant * 10 + (uint64_t)(*p - '0');
                    if (mant) ndig++;
                    exp10--;
                }
            }
        }
        if (!any) {
            if (end) *end = (char *)s;
            return 0.0;
        }
        if (*p == 'e' || *p == 'E') {
            const char *q = p + 1;
            int eneg = 0, e = 0;
            if (*q == '+' || *q == '-') eneg = *q++ == '-';
            if (isdigit((unsigned char)*q)) {
                while (isdigit((unsigned char)*q)) {
                    if (e < 100000) e = e * 10 + (*q - '0');
                    q++;
                }
                exp10 += eneg ? -e : e;
                p = q;
            }
        }
        v = fp_u64(mant);
        if (mant == 0) v = 0.0;
        else if (exp10 < -400) v = 0.0;
        else if (exp10 > 400) v = fp_from_bits(UINT64_C(0x7ff0000000000000));
        else v = fp_scale10(v, exp10);
        if (fp_isinf(v) || (v == 0.0 && mant != 0)) errno = ERANGE;
    }
    if (end) *end = (char *)p;
    return neg ? -v : v;
}

double atof(const char *s) { return strtod(s, NULL); }

int abs(int x) { return x < 0 ? -x : x; }
long labs(long x) { return x < 0 ? -x : x; }
long long llabs(long long x) { return x < 0 ? -x : x; }
div_t div(int a, int b) { return (div_t){a / b, a % b}; }
ldiv_t ldiv(long a, long b) { return (ldiv_t){a / b, a % b}; }
lldiv_t lldiv(long long a, long long b) { return (lldiv_t){a / b, a % b}; }

/* ---- sorting ---- */

static void swap_bytes(unsigned char *a, unsigned char *b, size_t size) {
    while (size--) {
        unsigned char t = *a;
        *a++ = *b;
        *b++ = t;
    }
}

/* Quicksort with median-of-three pivots, recursion on the smaller side (O(log n) stack),
 * insertion sort below 8 elements. Not stable. */
static void sort_range(unsigned char *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
    while (n > 7) {
        unsigned char *lo = base, *mid = base + (n / 2) * size, *hi = base + (n - 1) * size;
        if (cmp(mid, lo) < 0) swap_bytes(mid, lo, size);
        if (cmp(hi, mid) < 0) {
            swap_bytes(hi, mid, size);
            if (cmp(mid, lo) < 0) swap_bytes(mid, lo, size);
        }
        /* Pivot at the median position: move it to the front. */
        swap_bytes(base, mid, size);
        size_t i = 1, j = n - 1;
        for (;;) {
            while (i <= j && cmp(base + i * size, base) < 0) i++;
            while (j >= i && cmp(base + j * size, base) > 0) j--;
            if (i >= j) break;
            swap_bytes(base + i * size, base + j * size, size);
            i++;
            j--;
        }
        swap_bytes(base, base + j * size, size);
        size_t left = j, right = n - j - 1;
        if (left < right) {
            sort_range(base, left, size, cmp);
            base += (j + 1) * size;
            n = right;
        } else {
            sort_range(base + (j + 1) * size, right, size, cmp);
            n = left;
        }
    }
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && cmp(base + (k - 1) * size, base + k * size) > 0; k--)
            swap_bytes(base + (k - 1) * size, base + k * size, size);
}

void qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
    if (n > 1 && size > 0) sort_range(base, n, size, cmp);
}

void *bsearch(const void *key, const void *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
    const unsigned char *b = base;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp(key, b + mid * size);
        if (c == 0) return (void *)(b + mid * size);
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

/* ---- random numbers: xorshift32 ---- */

static unsigned rand_state = 1;

int rand_r(unsigned *state) {
    unsigned x = *state ? *state : 1;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return (int)(x >> 1);
}
int rand(void) { return rand_r(&rand_state); }
void srand(unsigned seed) { rand_state = seed ? seed : 1; }

/* ---- process control ---- */

static void (*atexit_fns[32])(void);
static int atexit_count;

int atexit(void (*fn)(void)) {
    if (atexit_count == 32) return -1;
    atexit_fns[atexit_count++] = fn;
    return 0;
}

void _Exit(int status) {
    struct denali_exit_args a = {(uint32_t)status};
    denali_hypercall(DENALI_HYPERCALL_EXIT, &a);
    for (;;) __asm__ volatile("hlt");
}

void exit(int status) {
    while (atexit_count > 0) atexit_fns[--atexit_count]();
    __ilwaco_stdio_flush_all();
    _Exit(status);
}

void abort(void) {
    __ilwaco_stdio_flush_all();
    __ilwaco_fatal_write("abort()\n");
    _Exit(134);
}

void __ilwaco_assert_fail(const char *expr, const char *file, int line, const char *func) {
    char num[12];
    int i = 11;
    num[i] = 0;
    unsigned v = (unsigned)line;
    do num[--i] = (char)('0' + v % 10); while ((v /= 10) && i > 0);
    __ilwaco_stdio_flush_all();
    __ilwaco_fatal_write("assertion failed: ");
    __ilwaco_fatal_write(expr);
    __ilwaco_fatal_write(" (");
    __ilwaco_fatal_write(file);
    __ilwaco_fatal_write(":");
    __ilwaco_fatal_write(num + i);
    __ilwaco_fatal_write(", ");
    __ilwaco_fatal_write(func);
    __ilwaco_fatal_write(")\n");
    _Exit(134);
}

char *getenv(const char *name) {
    (void)name;
    return NULL;
}
