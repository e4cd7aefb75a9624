/* string.h: memory and string functions.
 *
 * The bulk routines move 32 bits at a time: memcpy, memmove and memset use the x86 string
 * instructions (`rep movsl` / `rep stosl`, as musl's i386 versions do), which processors run
 * at cache speed and Yakima's emulator runs as one bulk copy; strlen, strcmp, memcmp and
 * memchr test a 32-bit word per step with the "has a zero byte" trick
 * ((x - 0x01010101) & ~x & 0x80808080, Hacker's Delight 6-1); strchr and strrchr test for
 * the terminator and c (x ^ c * 0x01010101) the same way. The string routines read the rest
 * of the aligned word holding the terminator, past the string's end: safe on Denali, whose
 * guest memory is one flat range sized in whole 4 KiB pages (no MMU, docs/architecture.md),
 * so an aligned 4-byte word never crosses a page and lies in memory if its first byte does.
 * The loads never touch a page the byte loop would not. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h> /* the network errno values */

#define ONES 0x01010101u
#define HIGHS 0x80808080u
#define HAS_ZERO(x) ((((x) - ONES) & ~(x) & HIGHS) != 0)

/* A 32-bit word that may alias any object (the word loops read char arrays). */
typedef uint32_t __attribute__((may_alias)) word_t;

static inline uint32_t load32(const void *p) {
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    void *d = dst;
    const void *s = src;
    size_t words = n >> 2, bytes = n & 3;
    __asm__ volatile("rep movsl\n\tmovl %[b], %%ecx\n\trep movsb"
                     : "+D"(d), "+S"(s), "+c"(words)
                     : [b] "r"(bytes)
                     : "memory");
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;
    if (d - s >= n) return memcpy(dst, src, n); /* no overlap, or dst below src: forward is safe */
    /* dst overlaps above src: copy downwards, the odd bytes at the top first, then words. */
    void *dp = (char *)dst + n - 1;
    const void *sp = (const char *)src + n - 1;
    size_t bytes = n & 3, words = n >> 2;
    __asm__ volatile("std\n\t"
                     "rep movsb\n\t"
                     "subl $3, %%esi\n\t"
                     "subl $3, %%edi\n\t"
                     "movl %[w], %%ecx\n\t"
                     "rep movsl\n\t"
                     "cld"
                     : "+D"(dp), "+S"(sp), "+c"(bytes)
                     : [w] "r"(words)
                     : "memory", "cc");
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    void *d = dst;
    uint32_t w = (unsigned char)c * ONES;
    size_t words = n >> 2, bytes = n & 3;
    __asm__ volatile("rep stosl\n\tmovl %[b], %%ecx\n\trep stosb"
                     : "+D"(d), "+c"(words)
                     : "a"(w), [b] "r"(bytes)
                     : "memory");
    return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    while (n >= 4 && load32(x) == load32(y)) x += 4, y += 4, n -= 4;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x < *y ? -1 : 1;
    return 0;
}

void *memchr(const void *s, int c, size_t n) {
    const unsigned char *p = s;
    unsigned char b = (unsigned char)c;
    for (; n && ((uintptr_t)p & 3); n--, p++)
        if (*p == b) return (void *)p;
    uint32_t pat = b * ONES;
    for (; n >= 4; n -= 4, p += 4) {
        uint32_t x = *(const word_t *)(const void *)p ^ pat;
        if (HAS_ZERO(x)) break;
    }
    for (; n; n--, p++)
        if (*p == b) return (void *)p;
    return NULL;
}

void *memrchr(const void *s, int c, size_t n) {
    const unsigned char *p = (const unsigned char *)s + n;
    while (n--)
        if (*--p == (unsigned char)c) return (void *)p;
    return NULL;
}

void *memmem(const void *hay, size_t hlen, const void *needle, size_t nlen) {
    const unsigned char *h = hay;
    if (nlen == 0) return (void *)h;
    for (size_t i = 0; i + nlen <= hlen; i++)
        if (h[i] == *(const unsigned char *)needle && memcmp(h + i, needle, nlen) == 0) return (void *)(h + i);
    return NULL;
}

size_t strlen(const char *s) {
    const char *p = s;
    for (; (uintptr_t)p & 3; p++)
        if (!*p) return (size_t)(p - s);
    while (!HAS_ZERO(*(const word_t *)(const void *)p)) p += 4;
    while (*p) p++;
    return (size_t)(p - s);
}

size_t strnlen(const char *s, size_t max) {
    size_t n = 0;
    while (n < max && s[n]) n++;
    return n;
}

char *strcpy(char *restrict dst, const char *restrict src) {
    char *d = dst;
    while ((*d++ = *src++)) {
    }
    return dst;
}

char *stpcpy(char *restrict dst, const char *restrict src) {
    while ((*dst = *src++)) dst++;
    return dst;
}

char *strncpy(char *restrict dst, const char *restrict src, size_t n) {
    size_t i = 0;
    for (; i < n && src[i]; i++) dst[i] = src[i];
    for (; i < n; i++) dst[i] = 0;
    return dst;
}

size_t strlcpy(char *restrict dst, const char *restrict src, size_t size) {
    size_t len = strlen(src);
    if (size) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(dst, src, n);
        dst[n] = 0;
    }
    return len;
}

size_t strlcat(char *restrict dst, const char *restrict src, size_t size) {
    size_t dl = strnlen(dst, size);
    if (dl == size) return size + strlen(src);
    return dl + strlcpy(dst + dl, src, size - dl);
}

char *strcat(char *restrict dst, const char *restrict src) {
    strcpy(dst + strlen(dst), src);
    return dst;
}

char *strncat(char *restrict dst, const char *restrict src, size_t n) {
    char *d = dst + strlen(dst);
    while (n-- && *src) *d++ = *src++;
    *d = 0;
    return dst;
}

int strcmp(const char *a, const char *b) {
    if ((((uintptr_t)a ^ (uintptr_t)b) & 3) == 0) {
        for (; (uintptr_t)a & 3; a++, b++)
            if (!*a || *a != *b) return (unsigned char)*a - (unsigned char)*b;
        for (;;) {
            uint32_t x = *(const word_t *)(const void *)a;
            if (x != *(const word_t *)(const void *)b || HAS_ZERO(x)) break;
            a += 4;
            b += 4;
        }
    }
    while (*a && *a == *b) a++, b++;
    return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n) {
    for (; n; n--, a++, b++) {
        if (*a != *b) return (unsigned char)*a - (unsigned char)*b;
        if (!*a) return 0;
    }
    return 0;
}

/* tolower in the C locale (ctype.c), inline: HTTP servers compare field names with these. */
static inline int lower_c(unsigned char c) { return c - 'A' < 26u ? c + 32 : c; }

int strcasecmp(const char *a, const char *b) {
    for (;; a++, b++) {
        int x = lower_c((unsigned char)*a), y = lower_c((unsigned char)*b);
        if (x != y || !x) return x - y;
    }
}

int strncasecmp(const char *a, const char *b, size_t n) {
    for (; n; n--, a++, b++) {
        int x = lower_c((unsigned char)*a), y = lower_c((unsigned char)*b);
        if (x != y || !x) return x - y;
    }
    return 0;
}

int strcoll(const char *a, const char *b) { return strcmp(a, b); }

char *strchr(const char *s, int c) {
    const unsigned char *p = (const unsigned char *)s;
    unsigned char b = (unsigned char)c;
    for (; (uintptr_t)p & 3; p++) {
        if (*p == b) return (char *)p;
        if (!*p) return NULL;
    }
    /* Stop at the word holding the terminator or c (c == 0 finds the terminator either way). */
    uint32_t pat = b * ONES;
    for (;; p += 4) {
        uint32_t x = *(const word_t *)(const void *)p;
        if (HAS_ZERO(x) || HAS_ZERO(x ^ pat)) break;
    }
    for (;; p++) {
        if (*p == b) return (char *)p;
        if (!*p) return NULL;
    }
}

char *strrchr(const char *s, int c) {
    const unsigned char *p = (const unsigned char *)s;
    unsigned char b = (unsigned char)c;
    if (!b) return (char *)s + strlen(s);
    const unsigned char *last = NULL;
    for (; (uintptr_t)p & 3; p++) {
        if (*p == b) last = p;
        if (!*p) return (char *)last;
    }
    /* Remember only the last whole word holding c; its byte is found once, at the end. */
    const unsigned char *hit = NULL;
    uint32_t pat = b * ONES;
    for (;; p += 4) {
        uint32_t x = *(const word_t *)(const void *)p;
        if (HAS_ZERO(x)) break;
        if (HAS_ZERO(x ^ pat)) hit = p;
    }
    const unsigned char *tail = NULL; /* c in the terminator's word */
    for (;; p++) {
        if (*p == b) tail = p;
        if (!*p) break;
    }
    if (tail) return (char *)tail;
    if (hit)
        for (int i = 3;; i--)
            if (hit[i] == b) return (char *)(hit + i);
    return (char *)last;
}

char *strstr(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    if (!n) return (char *)hay;
    for (; *hay; hay++)
        if (*hay == *needle && strncmp(hay, needle, n) == 0) return (char *)hay;
    return NULL;
}

size_t strspn(const char *s, const char *accept) {
    size_t n = 0;
    while (s[n] && strchr(accept, s[n])) n++;
    return n;
}

size_t strcspn(const char *s, const char *reject) {
    size_t n = 0;
    while (s[n] && !strchr(reject, s[n])) n++;
    return n;
}

char *strpbrk(const char *s, const char *accept) {
    s += strcspn(s, accept);
    return *s ? (char *)s : NULL;
}

char *strtok_r(char *restrict s, const char *restrict delim, char **restrict save) {
    if (!s) s = *save;
    if (!s) return NULL;
    s += strspn(s, delim);
    if (!*s) {
        *save = NULL;
        return NULL;
    }
    char *end = s + strcspn(s, delim);
    if (*end) {
        *end = 0;
        *save = end + 1;
    } else {
        *save = NULL;
    }
    return s;
}

char *strtok(char *restrict s, const char *restrict delim) {
    static char *save;
    return strtok_r(s, delim, &save);
}

char *strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

char *strndup(const char *s, size_t n) {
    size_t len = strnlen(s, n);
    char *p = malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = 0;
    }
    return p;
}

char *strerror(int e) {
    switch (e) {
    case 0: return "Success";
    case EPERM: return "Operation not permitted";
    case ENOENT: return "No such file or directory";
    case EINTR: return "Interrupted";
    case EIO: return "I/O error";
    case EBADF: return "Bad file descriptor";
    case EAGAIN: return "Resource temporarily unavailable";
    case ENOMEM: return "Out of memory";
    case EACCES: return "Permission denied";
    case EFAULT: return "Bad address";
    case EBUSY: return "Busy";
    case EEXIST: return "Exists";
    case EINVAL: return "Invalid argument";
    case ENOSPC: return "No space left";
    case EPIPE: return "Broken pipe";
    case EDOM: return "Argument out of domain";
    case ERANGE: return "Result out of range";
    case EDEADLK: return "Deadlock";
    case ENOSYS: return "Not implemented";
    case ETIMEDOUT: return "Timed out";
    case EMFILE: return "Too many open sockets";
    case ENOTSOCK: return "Not a socket";
    case EDESTADDRREQ: return "Destination address required";
    case EMSGSIZE: return "Message too long";
    case EPROTOTYPE: return "Protocol wrong type for socket";
    case ENOPROTOOPT: return "Protocol not available";
    case EPROTONOSUPPORT: return "Protocol not supported";
    case EOPNOTSUPP: return "Operation not supported";
    case EAFNOSUPPORT: return "Address family not supported";
    case EADDRINUSE: return "Address in use";
    case EADDRNOTAVAIL: return "Address not available";
    case ENETDOWN: return "Network is down (this VM has no network interface)";
    case ENETUNREACH: return "Network unreachable";
    case ECONNABORTED: return "Connection aborted";
    case ECONNRESET: return "Connection reset by peer";
    case ENOBUFS: return "No buffer space available";
    case EISCONN: return "Socket is connected";
    case ENOTCONN: return "Socket is not connected";
    case ECONNREFUSED: return "Connection refused";
    case EHOSTUNREACH: return "Host unreachable";
    case EALREADY: return "Operation already in progress";
    case EINPROGRESS: return "Operation in progress";
    default: {
        /* Like glibc: say which number, so an unknown code can still be looked up. */
        static char buf[32];
        snprintf(buf, sizeof buf, "Unknown error %d", e);
        return buf;
    }
    }
}
