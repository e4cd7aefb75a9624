/*
 * Host-native differential test of lib/printf.c against glibc's printf (test tool).
 * printf.c is compiled for the host with its entry points renamed il_* (see the test), so
 * the same formatting engine that runs in the guest is compared with glibc on random
 * doubles and integers. Only cases within the documented limits are compared: at most 17
 * significant digits.
 * Prints mismatches (up to 20) and "N passed, M failed".
 */
#include <math.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int il_snprintf(char *buf, size_t size, const char *fmt, ...);

static uint64_t state = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static long passed, failed;

static void compare(const char *fmt, double x, int prec) {
    char a[600], b[600];
    snprintf(a, sizeof a, fmt, prec, x);
    il_snprintf(b, sizeof b, fmt, prec, x);
    /* glibc drops the zeros after the point when %#g rounds up to a new power of ten
     * ("1.e+02" for %#.2g of 99.7); C11 7.21.6.1 keeps them ("1.0e+02"), as Ilwaco does. */
    if (fmt[1] == '#' && strstr(a, ".e")) return;
    if (strcmp(a, b) == 0) {
        passed++;
    } else {
        if (failed < 20) printf("mismatch: fmt %s prec %d x %.17g: glibc \"%s\" ilwaco \"%s\"\n", fmt, prec, x, a, b);
        failed++;
    }
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000;
    for (long i = 0; i < n; i++) {
        double x;
        int kind = (int)(next() % 4);
        if (kind == 0) { /* any finite double */
            uint64_t bits = next();
            memcpy(&x, &bits, 8);
            if (!isfinite(x)) continue;
        } else if (kind == 1) { /* ordinary magnitudes */
            x = ldexp((double)(next() >> 11), -53) * pow(10.0, (double)((int)(next() % 41) - 20));
        } else if (kind == 2) { /* short decimals: ties and near-ties */
            x = (double)(next() % 100000) / pow(10.0, (double)(next() % 6));
        } else { /* integers */
            x = (double)(int64_t)(next() >> (next() % 64));
        }
        if (next() & 1) x = -x;
        int e10 = x == 0 ? 0 : (int)floor(log10(fabs(x)));
        int maxsig = 17;
        for (int p = 0; p <= 17; p++) {
            if (p + 1 <= maxsig) compare("%.*e", x, p);
            if (p >= 1 && p <= maxsig) compare("%.*g", x, p);
            if (e10 + 1 + p <= maxsig && fabs(x) < 1e300) compare("%.*f", x, p);
            compare("%#.*g", x, p > maxsig ? maxsig : p == 0 ? 1 : p);
        }
    }
    /* integers */
    for (long i = 0; i < n; i++) {
        long long v = (long long)(next() >> (next() % 64));
        if (next() & 1) v = -v;
        char a[100], b[100];
        const char *fmts[] = {"%lld", "%+20lld", "%-20llx|", "%#llo", "%.25lld", "% 030lld", "%#llX"};
        for (int k = 0; k < 7; k++) {
            snprintf(a, sizeof a, fmts[k], v);
            il_snprintf(b, sizeof b, fmts[k], v);
            if (strcmp(a, b) == 0) passed++;
            else {
                if (failed < 20) printf("mismatch: %s %lld: glibc \"%s\" ilwaco \"%s\"\n", fmts[k], v, a, b);
                failed++;
            }
        }
    }
    printf("%ld passed, %ld failed\n", passed, failed);
    return failed != 0;
}
