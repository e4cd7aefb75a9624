/*
 * malloc/free/realloc/calloc: an address-ordered, first-fit free list with coalescing.
 *
 * The heap spans [IMAGE_END, STACK_TOP - STACK_SIZE), both read from the read-only virtual
 * registers (paper 3.3: "malloc reads the size of (virtual) physical memory from a virtual
 * register"). Memory is carved lazily from a "top" pointer; freed blocks go into the free
 * list (sorted by address, merged with free neighbours) and a free block that touches the
 * top is given back to it.
 *
 * Every block starts with a 16-byte header {size, magic, next, pad}; payloads are 16-byte
 * aligned; size includes the header and is a multiple of 16. The magic distinguishes
 * allocated from free blocks, so double frees and wild pointers abort with a message.
 */
#include "internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 16u
#define HDR 16u
#define MAGIC_USED 0xa110c8edu
#define MAGIC_FREE 0xf7eeb10cu

struct block {
    size_t size;        /* bytes including this header */
    uint32_t magic;     /* MAGIC_USED or MAGIC_FREE */
    struct block *next; /* next free block by address (free blocks only) */
    uint32_t pad;
};
_Static_assert(sizeof(struct block) == HDR, "header size");

static uintptr_t heap_start, heap_top, heap_end;
static struct block *free_list;
static size_t used_bytes, used_blocks;

void __ilwaco_malloc_init(void) {
    uintptr_t start = DENALI_VREG_RO_U32(DENALI_VREG_RO_IMAGE_END);
    uintptr_t end = DENALI_VREG_RO_U32(DENALI_VREG_RO_STACK_TOP) - DENALI_VREG_RO_U32(DENALI_VREG_RO_STACK_SIZE);
    start = (start + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1);
    if (end < start) end = start;
    heap_start = heap_top = start;
    heap_end = end & ~(uintptr_t)(ALIGN - 1);
    free_list = NULL;
}

static __attribute__((noreturn)) void heap_corrupt(const char *what, void *p) {
    char msg[80];
    static const char hex[] = "0123456789abcdef";
    char *m = msg;
    for (const char *s = "ilwaco: "; *s;) *m++ = *s++;
    for (const char *s = what; *s && m < msg + 60;) *m++ = *s++;
    *m++ = ' ';
    *m++ = '0';
    *m++ = 'x';
    for (int i = 28; i >= 0; i -= 4) *m++ = hex[((uintptr_t)p >> i) & 15];
    *m++ = '\n';
    *m = 0;
    __ilwaco_fatal_write(msg);
    abort();
}

static size_t request_size(size_t n) {
    if (n > heap_end - heap_start) return 0;
    size_t s = (n + HDR + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    return s < 2 * ALIGN ? 2 * ALIGN : s;
}

void *malloc(size_t n) {
    size_t need = request_size(n);
    if (need == 0) {
        errno = ENOMEM;
        return NULL;
    }
    struct block **link = &free_list;
    for (struct block *b = free_list; b; link = &b->next, b = b->next) {
        if (b->size < need) continue;
        if (b->size - need >= 2 * ALIGN) {
            /* Split: the tail stays free, in the same list position. */
            struct block *rest = (struct block *)((uintptr_t)b + need);
            rest->size = b->size - need;
            rest->magic = MAGIC_FREE;
            rest->next = b->next;
            *link = rest;
            b->size = need;
        } else {
            *link = b->next;
        }
        b->magic = MAGIC_USED;
        b->next = NULL;
        used_bytes += b->size;
        used_blocks++;
        return (char *)b + HDR;
    }
    if (heap_end - heap_top < need) {
        errno = ENOMEM;
        return NULL;
    }
    struct block *b = (struct block *)heap_top;
    heap_top += need;
    b->size = need;
    b->magic = MAGIC_USED;
    b->next = NULL;
    used_bytes += need;
    used_blocks++;
    return (char *)b + HDR;
}

static struct block *header_of(void *p) {
    uintptr_t a = (uintptr_t)p;
    if ((a & (ALIGN - 1)) || a < heap_start + HDR || a >= heap_top) heap_corrupt("free/realloc of a pointer malloc did not return:", p);
    struct block *b = (struct block *)(a - HDR);
    if (b->magic == MAGIC_FREE) heap_corrupt("double free of", p);
    if (b->magic != MAGIC_USED || b->size < 2 * ALIGN || b->size > heap_top - (uintptr_t)b) heap_corrupt("corrupt heap block at", p);
    return b;
}

void free(void *p) {
    if (!p) return;
    struct block *b = header_of(p);
    used_bytes -= b->size;
    used_blocks--;
    b->magic = MAGIC_FREE;
    /* Find the neighbours by address. */
    struct block *prev = NULL, *next = free_list;
    while (next && next < b) {
        prev = next;
        next = next->next;
    }
    b->next = next;
    if (prev) prev->next = b;
    else free_list = b;
    if (next && (uintptr_t)b + b->size == (uintptr_t)next) {
        b->size += next->size;
        b->next = next->next;
    }
    if (prev && (uintptr_t)prev + prev->size == (uintptr_t)b) {
        prev->size += b->size;
        prev->next = b->next;
        b = prev;
    }
    /* A free block ending at the top goes back to the untouched region. It is the last in the list. */
    if ((uintptr_t)b + b->size == heap_top && b->next == NULL) {
        heap_top = (uintptr_t)b;
        if (prev == b) {
            /* b merged into prev: unlink prev, whose predecessor we must find. */
            struct block **link = &free_list;
            while (*link != b) link = &(*link)->next;
            *link = NULL;
        } else if (prev) {
            prev->next = NULL;
        } else {
            free_list = NULL;
        }
    }
}

void *calloc(size_t n, size_t size) {
    if (size && n > (size_t)-1 / size) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = malloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

void *realloc(void *p, size_t n) {
    if (!p) return malloc(n);
    if (n == 0) {
        free(p);
        return NULL;
    }
    struct block *b = header_of(p);
    size_t need = request_size(n);
    if (need == 0) {
        errno = ENOMEM;
        return NULL;
    }
    if (need <= b->size) return p;
    /* Grow in place at the top of the heap. */
    if ((uintptr_t)b + b->size == heap_top && heap_end - (uintptr_t)b >= need) {
        used_bytes += need - b->size;
        heap_top = (uintptr_t)b + need;
        b->size = need;
        return p;
    }
    void *q = malloc(n);
    if (!q) return NULL;
    memcpy(q, p, b->size - HDR);
    free(p);
    return q;
}

void ilwaco_heap_stats(struct ilwaco_heap_stats *out) {
    size_t free_bytes = heap_end - heap_top;
    for (struct block *b = free_list; b; b = b->next) free_bytes += b->size;
    out->heap_size = heap_end - heap_start;
    out->used = used_bytes;
    out->free_bytes = free_bytes;
    out->blocks_in_use = used_blocks;
}

int ilwaco_heap_check(void) {
    size_t used = 0, blocks = 0;
    struct block *nf = free_list;
    uintptr_t a = heap_start;
    while (a < heap_top) {
        struct block *b = (struct block *)a;
        if (b->size < 2 * ALIGN || (b->size & (ALIGN - 1)) || b->size > heap_top - a) return -1;
        if (b->magic == MAGIC_USED) {
            used += b->size;
            blocks++;
        } else if (b->magic == MAGIC_FREE) {
            if (b != nf) return -1; /* free list must visit free blocks in address order */
            if (b->next && (uintptr_t)b + b->size == (uintptr_t)b->next) return -1; /* uncoalesced */
            nf = b->next;
        } else {
            return -1;
        }
        a += b->size;
    }
    if (nf != NULL || a != heap_top) return -1;
    return used == used_bytes && blocks == used_blocks ? 0 : -1;
}
