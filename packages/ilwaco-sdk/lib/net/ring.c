/* Bounded byte rings: TCP send and receive buffers (fixed capacity, no reallocation). */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "net_internal.h"
#include <stdlib.h>
#include <string.h>

/* Copy with 32-bit moves whatever the alignment: x86 allows unaligned loads and stores, and
 * segment payloads sit at odd offsets (54 bytes into a frame), where libc's memcpy falls back
 * to bytes. */
static void copy_bytes(uint8_t *d, const uint8_t *s, uint32_t n) {
    while (n >= 16) {
        uint32_t a, b, c, e;
        __builtin_memcpy(&a, s, 4);
        __builtin_memcpy(&b, s + 4, 4);
        __builtin_memcpy(&c, s + 8, 4);
        __builtin_memcpy(&e, s + 12, 4);
        __builtin_memcpy(d, &a, 4);
        __builtin_memcpy(d + 4, &b, 4);
        __builtin_memcpy(d + 8, &c, 4);
        __builtin_memcpy(d + 12, &e, 4);
        d += 16;
        s += 16;
        n -= 16;
    }
    while (n >= 4) {
        uint32_t a;
        __builtin_memcpy(&a, s, 4);
        __builtin_memcpy(d, &a, 4);
        d += 4;
        s += 4;
        n -= 4;
    }
    while (n--) *d++ = *s++;
}

int ring_alloc(struct ring *r, uint32_t cap) {
    r->buf = malloc(cap);
    r->cap = r->buf ? cap : 0;
    r->head = r->len = 0;
    return r->buf ? 0 : -1;
}

void ring_free(struct ring *r) {
    free(r->buf);
    r->buf = NULL;
    r->cap = r->head = r->len = 0;
}

void ring_poke(struct ring *r, uint32_t off, const void *src, uint32_t n) {
    uint32_t pos = r->head + off;
    if (pos >= r->cap) pos -= r->cap;
    uint32_t first = r->cap - pos;
    if (first > n) first = n;
    copy_bytes(r->buf + pos, src, first);
    if (n > first) copy_bytes(r->buf, (const uint8_t *)src + first, n - first);
}

void ring_peek(const struct ring *r, uint32_t off, void *dst, uint32_t n) {
    uint32_t pos = r->head + off;
    if (pos >= r->cap) pos -= r->cap;
    uint32_t first = r->cap - pos;
    if (first > n) first = n;
    copy_bytes(dst, r->buf + pos, first);
    if (n > first) copy_bytes((uint8_t *)dst + first, r->buf, n - first);
}

uint32_t ring_write(struct ring *r, const void *src, uint32_t n) {
    uint32_t space = ring_space(r);
    if (n > space) n = space;
    if (n) ring_poke(r, r->len, src, n);
    r->len += n;
    return n;
}

void ring_consume(struct ring *r, uint32_t n) {
    if (n > r->len) n = r->len;
    r->head += n;
    if (r->head >= r->cap) r->head -= r->cap;
    /* head is not reset when the ring empties: TCP keeps out-of-order data beyond len. */
    r->len -= n;
}
#endif
