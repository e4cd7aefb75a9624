/*
 * A CoreMark-like integer mix with a known answer (pnpm bench:emu; EEMBC CoreMark's four
 * kernels, written anew): per iteration it
 *  - reverses, searches and merge-sorts a 64-node linked list (pointer chasing, branches);
 *  - multiplies two 24x24 int32 matrices and sums the product (multiply-accumulate loops);
 *  - runs a 9-state scanner over a 256-byte text of numbers and words (switch/jump tables);
 *  - folds every result into a CRC-16/CCITT (shifts, xors, table-free bit loop).
 * N = argv[1] iterations (default 200); the printed CRCs depend on every step.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* ---------------------------------------------------------------- CRC-16 (CCITT, poly 0x1021) */
static uint16_t crc16_byte(uint16_t crc, uint8_t b) {
    crc ^= (uint16_t)b << 8;
    for (int k = 0; k < 8; k++) crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    return crc;
}

static uint16_t crc16_u32(uint16_t crc, uint32_t v) {
    for (int k = 0; k < 4; k++) crc = crc16_byte(crc, (uint8_t)(v >> (8 * k)));
    return crc;
}

/* ---------------------------------------------------------------- linked lists */
#define NODES 64
struct node {
    struct node *next;
    int32_t key;
    int32_t val;
};
static struct node pool[NODES];

static struct node *list_build(uint32_t seed) {
    struct node *head = NULL;
    for (int i = 0; i < NODES; i++) {
        seed = seed * 1103515245u + 12345u;
        pool[i].key = (int32_t)((seed >> 8) & 0x3ff);
        pool[i].val = i;
        pool[i].next = head;
        head = &pool[i];
    }
    return head;
}

static struct node *list_reverse(struct node *l) {
    struct node *r = NULL;
    while (l) {
        struct node *n = l->next;
        l->next = r;
        r = l;
        l = n;
    }
    return r;
}

static struct node *list_find(struct node *l, int32_t key) {
    while (l && l->key != key) l = l->next;
    return l;
}

/* Bottom-up merge sort by key (stable by val), as CoreMark's list kernel does. */
static struct node *list_sort(struct node *list) {
    int insize = 1;
    for (;;) {
        struct node *p = list, *tail = NULL;
        list = NULL;
        int merges = 0;
        while (p) {
            merges++;
            struct node *q = p;
            int psize = 0;
            for (int i = 0; i < insize && q; i++) psize++, q = q->next;
            int qsize = insize;
            while (psize > 0 || (qsize > 0 && q)) {
                struct node *e;
                if (psize == 0) e = q, q = q->next, qsize--;
                else if (qsize == 0 || !q) e = p, p = p->next, psize--;
                else if (p->key < q->key || (p->key == q->key && p->val <= q->val)) e = p, p = p->next, psize--;
                else e = q, q = q->next, qsize--;
                if (tail) tail->next = e;
                else list = e;
                tail = e;
            }
            p = q;
        }
        tail->next = NULL;
        if (merges <= 1) return list;
        insize *= 2;
    }
}

static uint16_t bench_list(uint16_t crc, uint32_t seed) {
    struct node *l = list_reverse(list_build(seed));
    for (int k = 0; k < 16; k++) {
        struct node *f = list_find(l, (int32_t)((seed >> k) & 0x3ff));
        crc = crc16_u32(crc, f ? (uint32_t)f->val : 0xffffffffu);
    }
    l = list_sort(l);
    int32_t sum = 0;
    for (struct node *n = l; n; n = n->next) sum = sum * 31 + n->key;
    return crc16_u32(crc, (uint32_t)sum);
}

/* ---------------------------------------------------------------- matrices */
#define MN 24
static int32_t ma[MN][MN], mb[MN][MN], mc[MN][MN];

static uint16_t bench_matrix(uint16_t crc, uint32_t seed) {
    for (int i = 0; i < MN; i++)
        for (int j = 0; j < MN; j++) {
            seed = seed * 1664525u + 1013904223u;
            ma[i][j] = (int32_t)(seed >> 20) - 2048;
            mb[i][j] = (int32_t)((seed >> 4) & 0xfff) - 2048;
        }
    for (int i = 0; i < MN; i++)
        for (int j = 0; j < MN; j++) {
            int32_t s = 0;
            for (int k = 0; k < MN; k++) s += ma[i][k] * mb[k][j];
            mc[i][j] = s;
        }
    uint32_t sum = 0;
    for (int i = 0; i < MN; i++)
        for (int j = 0; j < MN; j++) sum += (uint32_t)mc[i][j] ^ (uint32_t)(i * MN + j);
    return crc16_u32(crc, sum);
}

/* ---------------------------------------------------------------- state machine */
enum state { S_START, S_INT, S_SIGN, S_DEC, S_EXP_E, S_EXP_SIGN, S_EXP, S_WORD, S_BAD, S_COUNT };

static enum state step(enum state s, char c) {
    int digit = c >= '0' && c <= '9';
    switch (s) {
    case S_START:
        if (digit) return S_INT;
        if (c == '+' || c == '-') return S_SIGN;
        if (c == '.') return S_DEC;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return S_WORD;
        return S_BAD;
    case S_SIGN: return digit ? S_INT : c == '.' ? S_DEC : S_BAD;
    case S_INT: return digit ? S_INT : c == '.' ? S_DEC : (c == 'e' || c == 'E') ? S_EXP_E : S_BAD;
    case S_DEC: return digit ? S_DEC : (c == 'e' || c == 'E') ? S_EXP_E : S_BAD;
    case S_EXP_E: return digit ? S_EXP : (c == '+' || c == '-') ? S_EXP_SIGN : S_BAD;
    case S_EXP_SIGN: return digit ? S_EXP : S_BAD;
    case S_EXP: return digit ? S_EXP : S_BAD;
    case S_WORD: return ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || digit) ? S_WORD : S_BAD;
    default: return S_BAD;
    }
}

static char text[256];

static uint16_t bench_state(uint16_t crc, uint32_t seed) {
    static const char *const tokens[] = {"123", "-4.5", "6e7", "+.8E-9", "abc", "x1y2", "1.2.3", "--", "0", "9e", "Zed", "7E+3"};
    int n = 0;
    while (n < (int)sizeof text - 12) {
        seed = seed * 22695477u + 1u;
        const char *t = tokens[(seed >> 16) % 12];
        while (*t) text[n++] = *t++;
        text[n++] = (seed & 0x100) ? ',' : ' ';
    }
    text[n] = 0;
    uint32_t counts[S_COUNT] = {0};
    enum state s = S_START;
    for (int i = 0; i <= n; i++) {
        char c = text[i];
        if (c == ',' || c == ' ' || c == 0) {
            counts[s]++;
            s = S_START;
        } else {
            s = step(s, c);
        }
    }
    for (int k = 0; k < S_COUNT; k++) crc = crc16_u32(crc, counts[k]);
    return crc;
}

int main(int argc, char **argv) {
    long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 200;
    if (iters < 1) iters = 1;
    uint16_t crc_list = 0, crc_matrix = 0, crc_state = 0, crc = 0xffff;
    for (long it = 0; it < iters; it++) {
        uint32_t seed = (uint32_t)it * 2654435761u + 1;
        crc_list = bench_list(crc_list, seed);
        crc_matrix = bench_matrix(crc_matrix, seed);
        crc_state = bench_state(crc_state, seed);
        crc = crc16_u32(crc, (uint32_t)crc_list << 16 | crc_matrix);
        crc = crc16_u32(crc, crc_state);
    }
    printf("coremix %ld iterations: list %04x matrix %04x state %04x final %04x\n", iters, crc_list, crc_matrix, crc_state, crc);
    return 0;
}
