/* Bounded byte rings: TCP send and receive buffers (fixed capacity, no reallocation). Copies use
 * memcpy (`rep movsl`, any alignment: segment payloads sit at odd offsets in frames), which
 * Yakima's emulator runs as one bulk copy instead of a loop of guest instructions. */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "net_internal.h"
#include <stdlib.h>
#include <string.h>

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
    memcpy(r->buf + pos, src, first);
    if (n > first) memcpy(r->buf, (const uint8_t *)src + first, n - first);
}

void ring_peek(const struct ring *r, uint32_t off, void *dst, uint32_t n) {
    uint32_t pos = r->head + off;
    if (pos >= r->cap) pos -= r->cap;
    uint32_t first = r->cap - pos;
    if (first > n) first = n;
    memcpy(dst, r->buf + pos, first);
    if (n > first) memcpy((uint8_t *)dst + first, r->buf, n - first);
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
