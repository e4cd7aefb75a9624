/* stdlib.h: Ilwaco libc subset (paper 3.3: memory management, random numbers).
 *
 * The heap runs from IMAGE_END (first page after the image) to STACK_TOP - STACK_SIZE, both
 * read from the read-only virtual registers at boot ("malloc reads the size of (virtual)
 * physical memory from a virtual register", paper 3.3). malloc is an address-ordered
 * first-fit free list with coalescing; blocks are 16-byte aligned; it returns NULL (errno
 * ENOMEM) when the heap is exhausted. free() of a pointer malloc did not return, or a double
 * free, prints a message and aborts the VM.
 */
#ifndef ILWACO_STDLIB_H
#define ILWACO_STDLIB_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
#define EXIT_SUCCESS 0
#define EXIT_FAILURE 1
/** rand() returns 0..RAND_MAX. */
#define RAND_MAX 0x7fffffff
#ifndef NULL
#define NULL ((void *)0)
#endif

typedef struct { int quot, rem; } div_t;
typedef struct { long quot, rem; } ldiv_t;
typedef struct { long long quot, rem; } lldiv_t;

void *malloc(size_t size);
void free(void *p);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t size);
/** Heap statistics in bytes: total heap span, bytes in allocated blocks (incl. headers), free bytes. */
struct ilwaco_heap_stats { size_t heap_size, used, free_bytes; size_t blocks_in_use; };
void ilwaco_heap_stats(struct ilwaco_heap_stats *out);
/** Walk the heap and check every header; returns 0 if consistent, -1 otherwise. */
int ilwaco_heap_check(void);

void qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));
void *bsearch(const void *key, const void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

/* Conversions: leading whitespace, optional sign, base 0 (auto: 0x, 0) or 2..36. On overflow
 * they clamp and set errno = ERANGE; *end points after the last digit used. */
long strtol(const char *restrict s, char **restrict end, int base);
unsigned long strtoul(const char *restrict s, char **restrict end, int base);
long long strtoll(const char *restrict s, char **restrict end, int base);
unsigned long long strtoull(const char *restrict s, char **restrict end, int base);
/** Decimal and hex floating-point text; accuracy: within a few ulp (not always correctly rounded). */
double strtod(const char *restrict s, char **restrict end);
double atof(const char *s);
int atoi(const char *s);
long atol(const char *s);
long long atoll(const char *s);

int abs(int x);
long labs(long x);
long long llabs(long long x);
div_t div(int a, int b);
ldiv_t ldiv(long a, long b);
lldiv_t lldiv(long long a, long long b);

/**
 * Pseudo-random numbers: xorshift32 (Marsaglia 2003; state never 0), shifted right by one
 * bit to give 0..RAND_MAX. Deterministic: the seed is 1 until srand() is called, so a
 * service prints the same sequence on every run. Not cryptographic.
 */
int rand(void);
void srand(unsigned seed);
/** Reentrant variant: *state is the generator state (0 is treated as 1). */
int rand_r(unsigned *state);

/** Flush stdout/stderr, run atexit handlers (last registered first), EXIT hypercall. */
__attribute__((noreturn)) void exit(int status);
/** EXIT hypercall at once, nothing flushed. */
__attribute__((noreturn)) void _Exit(int status);
/** Print "abort()" to the console, flush, exit with status 134. */
__attribute__((noreturn)) void abort(void);
/** Register fn to run at exit(); at most 32 handlers. Returns 0, or -1 when full. */
int atexit(void (*fn)(void));
/** No environment in a Denali VM: always NULL. */
char *getenv(const char *name);
#ifdef __cplusplus
}
#endif
#endif
