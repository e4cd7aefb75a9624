/*
 * String and memory routines with a known answer (pnpm bench:emu): per round, over a 64 KiB
 * buffer at every alignment and a spread of lengths (8 B to 4 KiB), it runs memcpy, memmove
 * (both overlap directions), memset, strlen, strcmp (equal prefixes of growing length) and
 * memchr, and folds every result into an FNV-1a hash. N = argv[1] rounds (default 20).
 * The library under test is the C library the program is linked with (Ilwaco's in an image).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF 65536
static unsigned char src[BUF], dst[BUF];
static char s1[4200], s2[4200];

static uint32_t hash;
static void mix(uint32_t v) {
    for (int k = 0; k < 4; k++) {
        hash ^= (v >> (8 * k)) & 0xff;
        hash *= 16777619u;
    }
}

/* A sample of dst (not all of it: the hash must not dominate the routines it checks). */
static void mix_buf(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i += 61) mix(p[i]);
    if (n) mix(p[n - 1]);
}

static const size_t lens[] = {8, 13, 31, 64, 100, 255, 512, 1000, 1500, 4096};
#define NLENS (sizeof lens / sizeof lens[0])

static void round_(uint32_t r) {
    for (size_t li = 0; li < NLENS; li++) {
        size_t n = lens[li];
        for (unsigned al = 0; al < 4; al++) {
            size_t so = (r * 97 + li * 13 + al) % 2048, d = 4096 + ((r + al * 5) % 4) + li * 8;
            memcpy(dst + d, src + so + al, n);
            mix_buf(dst + d, n);
            memmove(dst + d + 3, dst + d, n);      /* overlapping, copies backwards */
            memmove(dst + d, dst + d + 5, n);      /* overlapping, copies forwards */
            mix_buf(dst + d, n);
            memset(dst + d + al, (int)(r + li), n);
            mix_buf(dst + d, n + al);
            const unsigned char *hit = memchr(src + so, (int)(0xa0 + al), n);
            mix(hit ? (uint32_t)(hit - src) : 0xffffffffu);
        }
        memcpy(s1, src + 8192, n);
        s1[n] = 0;
        for (size_t i = 0; i < n; i++)
            if (s1[i] == 0) s1[i] = 'z';
        memcpy(s2, s1, n + 1);
        mix((uint32_t)strlen(s1));
        mix((uint32_t)strcmp(s1, s2));
        s2[n - 1 - (r % n)] ^= 1;
        int c = strcmp(s1, s2);
        mix((uint32_t)(c < 0 ? -1 : c > 0 ? 1 : 0));
    }
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? strtol(argv[1], NULL, 10) : 20;
    if (rounds < 1) rounds = 1;
    uint32_t seed = 12345;
    for (int i = 0; i < BUF; i++) {
        seed = seed * 1103515245u + 12345u;
        src[i] = (unsigned char)(seed >> 16);
    }
    hash = 2166136261u;
    for (long r = 0; r < rounds; r++) round_((uint32_t)r);
    printf("strmem %ld rounds: hash %08x\n", rounds, hash);
    return 0;
}
