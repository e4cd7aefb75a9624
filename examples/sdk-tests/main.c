/*
 * Self-test of the Ilwaco libc and threads, run inside a Denali VM. Prints one line per
 * section and a final "sdk-tests: N passed, 0 failed"; failed checks print "FAIL ..." lines
 * and make the exit status 1.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <ilwaco/ilwaco.h>
#include <ilwaco/thread.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int ssize_t;

static int passed, failed, section_failed, section_checks;

static void check(int ok, const char *what, int line) {
    section_checks++;
    if (ok) {
        passed++;
    } else {
        failed++;
        section_failed++;
        printf("FAIL line %d: %s\n", line, what);
    }
}
#define CHECK(c) check(!!(c), #c, __LINE__)

static void check_str(const char *got, const char *want, const char *what, int line) {
    section_checks++;
    if (strcmp(got, want) == 0) {
        passed++;
    } else {
        failed++;
        section_failed++;
        printf("FAIL line %d: %s: got \"%s\", want \"%s\"\n", line, what, got, want);
    }
}
#define CHECK_STR(got, want) check_str((got), (want), #got, __LINE__)

static void begin(void) { section_failed = section_checks = 0; }
static void finish(const char *name) { printf("%-10s %s\n", name, section_failed ? "FAILED" : "ok"); }

/* ---- printf ---- */
static char fbuf[512];
#define T(want, ...)                                  \
    do {                                              \
        snprintf(fbuf, sizeof fbuf, __VA_ARGS__);     \
        check_str(fbuf, want, #__VA_ARGS__, __LINE__); \
    } while (0)

static void test_printf(void) {
    begin();
#include "printf_cases.inc"
    /* snprintf truncation and return value */
    char small[6];
    int n = snprintf(small, sizeof small, "%s", "hello world");
    CHECK(n == 11);
    CHECK_STR(small, "hello");
    CHECK(snprintf(NULL, 0, "%d", 12345) == 5);
    char big[64];
    CHECK(sprintf(big, "%s-%d", "x", 7) == 3);
    CHECK_STR(big, "x-7");
    int pos = 0;
    snprintf(big, sizeof big, "abc%nxyz", &pos);
    CHECK(pos == 3);
    finish("printf");
}

/*
 * The word-at-a-time paths of strlen, strchr, strrchr, memchr and strcmp, exhaustively over
 * short strings: every alignment 0-3 (of both strings, for strcmp), the terminator at each byte
 * of a word, c in the first and last byte of a word, bytes >= 0x80, and c or junk after the
 * terminator inside the same word (which must not be found). Expected answers come from how
 * each case is built, not from a second implementation. One CHECK per routine; the first
 * failing case is printed.
 */
static unsigned char wa[64] __attribute__((aligned(16))), wb[64] __attribute__((aligned(16)));
#define WORD_FAIL(flag, ...)                                          \
    do {                                                              \
        if (flag) printf("FAIL case: " __VA_ARGS__), printf("\n");   \
        flag = 0;                                                     \
    } while (0)

static void test_string_words(void) {
    static const unsigned char fill[] = {'a', 0x80, 0xff, 0x7f, 'z', 0xc2, 1, 0xfe};
    int ok = 1;
    /* strlen: terminator at each position, then junk and c bytes. */
    for (int off = 0; off < 4; off++)
        for (int len = 0; len < 16; len++) {
            memset(wa, 0xc3, sizeof wa);
            for (int i = 0; i < len; i++) wa[off + i] = fill[i & 7];
            wa[off + len] = 0;
            if (strlen((char *)wa + off) != (size_t)len) WORD_FAIL(ok, "strlen off %d len %d", off, len);
        }
    CHECK(ok);
    /* strchr / strrchr: every subset of positions holding c, for c < 0x80, c >= 0x80 (passed
     * as a negative int and as int + 256: converted to unsigned char) and c = 0. */
    static const int cs[] = {'m', (signed char)0xc3, 0xc3, 0x1c3, 0x80, 0};
    ok = 1;
    int ok2 = 1;
    for (unsigned ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
        unsigned char c = (unsigned char)cs[ci];
        for (int off = 0; off < 4; off++)
            for (int len = 0; len < 11; len++)
                for (unsigned mask = 0; mask < (c ? 1u << len : 1u); mask++) {
                    memset(wa, c ? c : 'q', sizeof wa); /* c after the terminator */
                    int first = -1, last = -1;
                    for (int i = 0; i < len; i++) {
                        wa[off + i] = (mask >> i & 1) ? c : fill[i & 7] == c ? 'b' : fill[i & 7];
                        if (mask >> i & 1) {
                            if (first < 0) first = i;
                            last = i;
                        }
                    }
                    wa[off + len] = 0;
                    if (!c) first = last = len;
                    const char *s = (const char *)wa + off;
                    const char *want1 = first < 0 ? NULL : s + first, *want2 = last < 0 ? NULL : s + last;
                    if (strchr(s, cs[ci]) != want1) WORD_FAIL(ok2, "strchr c %d off %d len %d mask %x", cs[ci], off, len, mask);
                    if (strrchr(s, cs[ci]) != want2) WORD_FAIL(ok, "strrchr c %d off %d len %d mask %x", cs[ci], off, len, mask);
                }
    }
    CHECK(ok2);
    CHECK(ok);
    /* memchr: a match at each position of n bytes, or one just past n (not found). */
    ok = 1;
    for (int off = 0; off < 4; off++)
        for (int n = 0; n < 16; n++)
            for (int at = 0; at <= n; at++) {
                memset(wa, 0, sizeof wa);
                for (int i = 0; i < n; i++) wa[off + i] = fill[i & 7] == 0xc3 ? 1 : fill[i & 7];
                wa[off + at] = 0xc3;
                const void *want = at < n ? wa + off + at : NULL;
                if (memchr(wa + off, (signed char)0xc3, (size_t)n) != want) WORD_FAIL(ok, "memchr off %d n %d at %d", off, n, at);
            }
    CHECK(ok);
    /* strcmp: equal prefixes of each length at each pair of alignments, then one differing pair. */
    static const unsigned char diff[][2] = {{0, 0}, {'a', 0}, {0, 'a'}, {'b', 'a'}, {'a', 'b'}, {0xf0, 'a'}, {'a', 0xf0}, {0x80, 0x7f}, {0xff, 0xfe}, {1, 0xff}};
    ok = 1;
    for (int oa = 0; oa < 4; oa++)
        for (int ob = 0; ob < 4; ob++)
            for (int d = 0; d < 13; d++)
                for (unsigned k = 0; k < sizeof diff / sizeof diff[0]; k++) {
                    memset(wa, 'x', sizeof wa); /* junk after the end that differs between the two */
                    memset(wb, 'y', sizeof wb);
                    for (int i = 0; i < d; i++) wa[oa + i] = wb[ob + i] = fill[i & 7];
                    wa[oa + d] = diff[k][0];
                    wb[ob + d] = diff[k][1];
                    wa[oa + d + 1] = wb[ob + d + 1] = 0;
                    int want = diff[k][0] < diff[k][1] ? -1 : diff[k][0] > diff[k][1];
                    if (!diff[k][0] && !diff[k][1]) want = 0;
                    int got = strcmp((char *)wa + oa, (char *)wb + ob);
                    if ((got > 0) - (got < 0) != want) WORD_FAIL(ok, "strcmp a off %d b off %d prefix %d pair %u: %d", oa, ob, d, k, got);
                }
    CHECK(ok);
}

/* ---- string.h / ctype.h ---- */
static void test_string(void) {
    begin();
    char buf[64];
    CHECK(strlen("") == 0 && strlen("abc") == 3);
    CHECK(strnlen("abcdef", 3) == 3 && strnlen("ab", 10) == 2);
    CHECK(strcmp("abc", "abd") < 0 && strcmp("b", "a") > 0 && strcmp("x", "x") == 0);
    CHECK(strncmp("abcdef", "abcxyz", 3) == 0 && strncmp("abc", "abd", 3) < 0);
    CHECK(strcasecmp("HeLLo", "hello") == 0 && strncasecmp("ABCx", "abcy", 3) == 0 && strcasecmp("a", "B") < 0);
    /* C locale: only A-Z fold ('@' '[' sit next to them, bytes >= 0x80 compare unsigned and unfolded). */
    CHECK(strcasecmp("AZ", "az") == 0 && strcasecmp("@", "`") < 0 && strcasecmp("[", "{") < 0 && strcasecmp("\xc9", "\xe9") < 0 &&
          strncasecmp("\xff", "a", 1) > 0 && strncasecmp("x", "y", 0) == 0 && strcasecmp("ab", "AB\x80") < 0);
    CHECK(strcmp("\xff", "a") > 0); /* compares as unsigned char */
    const char *s = "hello world";
    CHECK(strchr(s, 'o') == s + 4 && strrchr(s, 'o') == s + 7 && strchr(s, 'z') == NULL && strchr(s, 0) == s + 11);
    CHECK(strstr(s, "world") == s + 6 && strstr(s, "") == s && strstr(s, "worlds") == NULL);
    CHECK(strspn("aabbc", "ab") == 4 && strcspn("abc;def", ";") == 3 && strpbrk(s, "wr") == s + 6);
    strcpy(buf, "abc");
    strcat(buf, "def");
    CHECK_STR(buf, "abcdef");
    strncat(buf, "ghijk", 2);
    CHECK_STR(buf, "abcdefgh");
    CHECK(strlcpy(buf, "truncated", 5) == 9);
    CHECK_STR(buf, "trun");
    memset(buf, 'x', 10);
    buf[10] = 0;
    CHECK_STR(buf, "xxxxxxxxxx");
    strcpy(buf, "0123456789");
    memmove(buf + 2, buf, 5);
    CHECK_STR(buf, "0101234789");
    strcpy(buf, "0123456789");
    memmove(buf, buf + 3, 5);
    CHECK_STR(buf, "3456756789");
    CHECK(memcmp("abc", "abd", 3) < 0 && memcmp("abc", "abc", 3) == 0 && memchr("abc", 'c', 3) != NULL);
    char *d = strdup("copy me");
    CHECK(d && strcmp(d, "copy me") == 0);
    free(d);
    char line[] = " alpha, beta,,gamma ";
    char *save, *tok;
    const char *want[] = {"alpha", "beta", "gamma"};
    int k = 0, ok = 1;
    for (tok = strtok_r(line, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save), k++) ok &= k < 3 && strcmp(tok, want[k]) == 0;
    CHECK(ok && k == 3);
    CHECK(isdigit('5') && !isdigit('a') && isalpha('Q') && isspace('\t') && isxdigit('F') && !isxdigit('g'));
    CHECK(toupper('a') == 'A' && tolower('Z') == 'z' && toupper('1') == '1' && ispunct('!') && !isprint('\n'));
    CHECK_STR(strerror(ENOMEM), "Out of memory");
    test_string_words();
    finish("string");
}

/* ---- stdlib conversions ---- */
static void test_conv(void) {
    begin();
    char *end;
    CHECK(strtol("  -123xyz", &end, 10) == -123 && *end == 'x');
    CHECK(strtol("0x1f", NULL, 0) == 31 && strtol("017", NULL, 0) == 15 && strtol("z", NULL, 36) == 35);
    CHECK(strtol("ff", NULL, 16) == 255 && strtol("0xff", NULL, 16) == 255 && strtol("101", NULL, 2) == 5);
    errno = 0;
    CHECK(strtol("99999999999", NULL, 10) == LONG_MAX && errno == ERANGE);
    errno = 0;
    CHECK(strtol("-99999999999", NULL, 10) == LONG_MIN && errno == ERANGE);
    CHECK(strtol("-2147483648", NULL, 10) == LONG_MIN);
    CHECK(strtoul("4294967295", NULL, 10) == 4294967295UL);
    CHECK(strtoll("-9223372036854775808", NULL, 10) == LLONG_MIN);
    CHECK(strtoull("18446744073709551615", NULL, 10) == ULLONG_MAX);
    errno = 0;
    CHECK(strtoull("18446744073709551616", NULL, 10) == ULLONG_MAX && errno == ERANGE);
    CHECK(strtol("abc", &end, 10) == 0);
    CHECK(strcmp(end, "abc") == 0);
    CHECK(atoi("42") == 42 && atol("-7") == -7 && atoi("  +8") == 8);
    CHECK(abs(-5) == 5 && labs(-6L) == 6 && llabs(-7LL) == 7);
    CHECK(strtod("3.25", NULL) == 3.25 && strtod("-1e3", NULL) == -1000.0 && strtod("0.1", NULL) == 0.1);
    CHECK(strtod("1.5e-3x", &end) == 0.0015 && *end == 'x');
    CHECK(atof("2.5") == 2.5);
    int a = 0, b = 0;
    char word[16];
    CHECK(sscanf("12 0x1f word", "%d %i %15s", &a, &b, word) == 3 && a == 12 && b == 31 && strcmp(word, "word") == 0);
    finish("conv");
}

/* ---- qsort / bsearch / rand ---- */
static int cmp_int(const void *x, const void *y) {
    int a = *(const int *)x, b = *(const int *)y;
    return (a > b) - (a < b);
}
static int cmp_str(const void *x, const void *y) { return strcmp(*(const char *const *)x, *(const char *const *)y); }

static void test_sort(void) {
    begin();
    static int v[2000];
    srand(12345);
    for (int i = 0; i < 2000; i++) v[i] = rand() % 1000;
    qsort(v, 2000, sizeof v[0], cmp_int);
    int sorted = 1;
    for (int i = 1; i < 2000; i++) sorted &= v[i - 1] <= v[i];
    CHECK(sorted);
    for (int i = 0; i < 2000; i++) v[i] = i * 3;
    int key = 300;
    CHECK(bsearch(&key, v, 2000, sizeof v[0], cmp_int) == &v[100]);
    key = 301;
    CHECK(bsearch(&key, v, 2000, sizeof v[0], cmp_int) == NULL);
    for (int i = 0; i < 2000; i++) v[i] = 7; /* all equal */
    qsort(v, 2000, sizeof v[0], cmp_int);
    CHECK(v[0] == 7 && v[1999] == 7);
    for (int i = 0; i < 2000; i++) v[i] = 2000 - i; /* reversed */
    qsort(v, 2000, sizeof v[0], cmp_int);
    CHECK(v[0] == 1 && v[1999] == 2000);
    const char *names[] = {"pear", "apple", "fig", "banana"};
    qsort(names, 4, sizeof names[0], cmp_str);
    CHECK(strcmp(names[0], "apple") == 0 && strcmp(names[3], "pear") == 0);
    srand(1);
    int r1 = rand();
    srand(1);
    CHECK(rand() == r1 && r1 >= 0 && r1 <= RAND_MAX);
    finish("sort");
}

/* ---- malloc ---- */
static void test_malloc(void) {
    begin();
    struct ilwaco_heap_stats st0, st1;
    ilwaco_heap_stats(&st0);
    CHECK(st0.heap_size > 4u << 20); /* 8M VM: most of it is heap */
    static void *ptrs[500];
    static size_t sizes[500];
    unsigned seed = 99;
    int ok = 1;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 500; i++) {
            if (ptrs[i] && rand_r(&seed) % 2) {
                unsigned char *p = ptrs[i];
                for (size_t j = 0; j < sizes[i]; j++) ok &= p[j] == (unsigned char)(i + j);
                free(ptrs[i]);
                ptrs[i] = NULL;
            } else if (!ptrs[i]) {
                sizes[i] = (size_t)(rand_r(&seed) % 3000) + 1;
                unsigned char *p = malloc(sizes[i]);
                ok &= p != NULL && ((uintptr_t)p & 15) == 0;
                if (!p) continue;
                for (size_t j = 0; j < sizes[i]; j++) p[j] = (unsigned char)(i + j);
                ptrs[i] = p;
            } else {
                size_t ns = (size_t)(rand_r(&seed) % 5000) + 1;
                unsigned char *p = realloc(ptrs[i], ns);
                ok &= p != NULL;
                size_t keep = ns < sizes[i] ? ns : sizes[i];
                for (size_t j = 0; j < keep; j++) ok &= p[j] == (unsigned char)(i + j);
                for (size_t j = 0; j < ns; j++) p[j] = (unsigned char)(i + j);
                ptrs[i] = p;
                sizes[i] = ns;
            }
        }
        ok &= ilwaco_heap_check() == 0;
    }
    CHECK(ok);
    for (int i = 0; i < 500; i++) free(ptrs[i]);
    CHECK(ilwaco_heap_check() == 0);
    ilwaco_heap_stats(&st1);
    CHECK(st1.used == st0.used && st1.blocks_in_use == st0.blocks_in_use);
    CHECK(st1.free_bytes == st0.free_bytes); /* everything coalesced back */
    int *z = calloc(100, sizeof *z);
    int zero = 1;
    for (int i = 0; i < 100; i++) zero &= z[i] == 0;
    CHECK(z && zero);
    free(z);
    errno = 0;
    CHECK(malloc(64u << 20) == NULL && errno == ENOMEM); /* more than the VM has */
    CHECK(calloc(0x10000, 0x10000) == NULL);
    void *big = malloc(4u << 20);
    CHECK(big != NULL);
    free(big);
    CHECK(ilwaco_heap_check() == 0);
    finish("malloc");
}

/* ---- 64-bit arithmetic helpers (__udivdi3 & co.) ---- */
static volatile uint64_t vu[8] = {0xffffffffffffffffull, 3, 0x123456789abcdef0ull, 0x100000000ull, 1000000007ull, 0x8000000000000000ull, 7, 0xfffffffff};
static volatile int64_t vs[4] = {-9223372036854775807LL - 1, -7, 123456789012345LL, -1000000};

static void test_div64(void) {
    begin();
    CHECK(vu[0] / vu[1] == 0x5555555555555555ull && vu[0] % vu[1] == 0);
    CHECK(vu[2] / vu[3] == 0x12345678ull && vu[2] % vu[3] == 0x9abcdef0ull);
    CHECK(vu[2] / vu[4] == 1311768458ull && vu[2] % vu[4] == 281411114ull);
    CHECK(vu[5] / vu[7] == 0x8000000ull && vu[5] % vu[7] == 0x8000000ull);
    CHECK(vu[1] / vu[2] == 0 && vu[1] % vu[2] == 3);
    CHECK(vu[0] / vu[0] == 1 && vu[0] / vu[6] == 0x2492492492492492ull && vu[0] % vu[6] == 1);
    CHECK(vs[0] / vs[1] == 1317624576693539401LL && vs[0] % vs[1] == -1);
    CHECK(vs[2] / vs[3] == -123456789LL && vs[2] % vs[3] == 12345);
    CHECK(vs[1] / 2 == -3 && vs[1] % 2 == -1);
    /* Cross-check a range against multiplication: q*b + r == a, r < b. */
    int ok = 1;
    uint64_t a = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 300; i++) {
        uint64_t b = (a >> (i % 61)) | 1;
        uint64_t q = a / b, r = a % b;
        ok &= q * b + r == a && r < b;
        a = a * 6364136223846793005ull + 1442695040888963407ull;
    }
    CHECK(ok);
    volatile uint32_t x = 0xf0f0f0f0u;
    volatile uint64_t y = 0x8000000000000001ull;
    CHECK(__builtin_popcount(x) == 16 && __builtin_popcountll(y) == 2 && __builtin_ctzll(y << 3) == 3 && __builtin_clzll(y >> 1) == 1);
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", 18446744073709551615ull);
    CHECK_STR(buf, "18446744073709551615");
    finish("div64");
}

/* ---- setjmp / longjmp ---- */
static jmp_buf jb;
static int depth;
static void dive(int n) {
    depth = n;
    if (n == 10) longjmp(jb, 42);
    dive(n + 1);
}

static void test_setjmp(void) {
    begin();
    volatile int count = 0;
    int r = setjmp(jb);
    count++;
    if (r == 0) dive(0);
    CHECK(r == 42 && depth == 10 && count == 2);
    r = setjmp(jb);
    if (r == 0) longjmp(jb, 0);
    CHECK(r == 1);
    finish("setjmp");
}

/* ---- threads ---- */
static mutex_t m = MUTEX_INITIALIZER;
static cond_t cv = COND_INITIALIZER;
static int order[16], norder;
static int shared_counter;

static void *add_many(void *arg) {
    for (int i = 0; i < 1000; i++) {
        mutex_lock(&m);
        int v = shared_counter;
        if (i % 100 == 0) thread_yield(); /* holding the lock across a yield */
        shared_counter = v + 1;
        mutex_unlock(&m);
    }
    return arg;
}

static void *sleep_then_record(void *arg) {
    int id = (int)(intptr_t)arg;
    thread_sleep_us((uint64_t)(5 - id) * 2000); /* 8, 6, 4, 2 ms */
    order[norder++] = id;
    return NULL;
}

static int ready;
static void *waiter(void *arg) {
    mutex_lock(&m);
    while (!ready) cond_wait(&cv, &m);
    mutex_unlock(&m);
    return arg;
}

static void *recurse(void *arg) {
    /* Use a fair amount of stack in a thread. */
    volatile char pad[8000];
    pad[0] = 1;
    pad[7999] = 2;
    return (void *)(intptr_t)(pad[0] + pad[7999] + (int)(intptr_t)arg);
}

static void test_threads(void) {
    begin();
    CHECK(thread_id(thread_self()) == 0 && thread_count() == 1);
    thread_t *a = thread_create(add_many, (void *)1, 0), *b = thread_create(add_many, (void *)2, 0);
    CHECK(thread_count() == 3);
    CHECK(thread_join(a) == (void *)1 && thread_join(b) == (void *)2 && shared_counter == 2000);
    thread_t *s[4];
    for (int i = 1; i <= 4; i++) s[i - 1] = thread_create(sleep_then_record, (void *)(intptr_t)i, 0);
    for (int i = 0; i < 4; i++) thread_join(s[i]);
    CHECK(norder == 4 && order[0] == 4 && order[1] == 3 && order[2] == 2 && order[3] == 1);
    thread_t *w[3];
    for (int i = 0; i < 3; i++) w[i] = thread_create(waiter, (void *)(intptr_t)(i + 10), 0);
    thread_yield(); /* let them block on the condvar */
    mutex_lock(&m);
    ready = 1;
    cond_broadcast(&cv);
    mutex_unlock(&m);
    int sum = 0;
    for (int i = 0; i < 3; i++) sum += (int)(intptr_t)thread_join(w[i]);
    CHECK(sum == 33);
    /* timed wait that times out, and the clock advances by at least the timeout */
    mutex_lock(&m);
    uint64_t t0 = ilwaco_ticks();
    int r = cond_timedwait(&cv, &m, 5000);
    uint64_t dt = ilwaco_ticks() - t0;
    mutex_unlock(&m);
    CHECK(r == THREAD_TIMEDOUT && dt >= 5000);
    CHECK(mutex_trylock(&m) == 0 && mutex_trylock(&m) == -1);
    mutex_unlock(&m);
    thread_t *k = thread_create(waiter, NULL, 0);
    ready = 0;
    thread_yield();
    CHECK(thread_kill(k) == 0 && thread_join(k) == THREAD_KILLED);
    thread_t *big = thread_create(recurse, (void *)4, 32 * 1024);
    CHECK(thread_join(big) == (void *)7);
    struct thread_stats st;
    thread_get_stats(&st);
    CHECK(st.context_switches > 10 && st.idle_calls > 0);
    CHECK(thread_count() == 1);
    finish("threads");
}

static void test_time(void) {
    begin();
    time_t now = time(NULL);
    CHECK(now > 1500000000); /* WALLCLOCK is set: after 2017 */
    uint64_t t0 = ilwaco_ticks();
    ilwaco_usleep(2000);
    CHECK(ilwaco_ticks() - t0 >= 2000);
    CHECK(ilwaco_memory_size() == 8u << 20);
    finish("time");
}

int main(void) {
    test_printf();
    test_string();
    test_conv();
    test_sort();
    test_malloc();
    test_div64();
    test_setjmp();
    test_threads();
    test_time();
    printf("sdk-tests: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
