/**
 * Host-compiled checks of the network stack's self-contained pieces (lib/net/checksum.c,
 * ring.c, inet.c): each is compiled for the host with its public names renamed and driven by
 * a harness that compares it with straightforward reference code (RFC 1071 big-endian word
 * sums, a plain array FIFO) on seeded random inputs, plus fixed vectors.
 */
import { execa } from 'execa';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sdkPaths } from '../src/index.js';
import { freshDir } from './helpers.js';

const HARNESS = String.raw`
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t net_sum(const void *data, size_t len, uint32_t sum);
uint16_t net_fold(uint32_t sum);
uint32_t net_pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len);
struct ring { uint8_t *buf; uint32_t cap, head, len; };
int ring_alloc(struct ring *r, uint32_t cap);
void ring_free(struct ring *r);
uint32_t ring_write(struct ring *r, const void *src, uint32_t n);
void ring_peek(const struct ring *r, uint32_t off, void *dst, uint32_t n);
void ring_poke(struct ring *r, uint32_t off, const void *src, uint32_t n);
void ring_consume(struct ring *r, uint32_t n);
int il_inet_pton(int af, const char *src, void *dst);
const char *il_inet_ntop(int af, const void *src, char *dst, uint32_t size);
int il_errno;

static int passed, failed;
static void check(int ok, const char *what, long detail) {
    if (ok) passed++;
    else if (failed++ < 20) printf("FAIL %s (%ld)\n", what, detail);
}
static uint32_t rs = 12345;
static uint32_t rnd(void) { rs ^= rs << 13; rs ^= rs >> 17; rs ^= rs << 5; return rs; }

/* Reference: RFC 1071 over big-endian 16-bit words, odd byte padded with zero. */
static uint16_t ref_checksum(const uint8_t *p, size_t n, uint32_t init) {
    uint64_t s = init;
    for (size_t i = 0; i < n; i += 2) s += (uint32_t)(p[i] << 8) | (i + 1 < n ? p[i + 1] : 0);
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

int main(void) {
    /* RFC 1071 section 3 example: the sum of these bytes is ddf2. */
    const uint8_t ex[8] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    uint16_t c = net_fold(net_sum(ex, 8, 0));
    check(ntohs(c) == (uint16_t)~0xddf2, "rfc1071 example", ntohs(c));
    static uint8_t buf[70000];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = rnd() % (iter < 100 ? 70000 : 1600);
        size_t off = rnd() % 4;
        for (size_t i = 0; i < n; i++) buf[off + i] = (uint8_t)rnd();
        if (iter % 7 == 0) memset(buf + off, 0xff, n); /* all-ones words stress the carries */
        uint16_t got = ntohs(net_fold(net_sum(buf + off, n, 0)));
        check(got == ref_checksum(buf + off, n, 0), "checksum", (long)n);
        /* A buffer carrying its own checksum verifies to zero. */
        if (n >= 2 && n % 2 == 0) {
            buf[off] = buf[off + 1] = 0;
            uint16_t ck = net_fold(net_sum(buf + off, n, 0));
            memcpy(buf + off, &ck, 2);
            check(net_fold(net_sum(buf + off, n, 0)) == 0, "self-verify", (long)n);
        }
        /* Pseudo header: src, dst, zero, proto, length (RFC 9293 3.1). */
        uint32_t src = rnd(), dst = rnd();
        uint16_t len = (uint16_t)(n & 0xffff);
        uint8_t ph[12];
        memcpy(ph, &src, 4);
        memcpy(ph + 4, &dst, 4);
        ph[8] = 0; ph[9] = 6; ph[10] = (uint8_t)(len >> 8); ph[11] = (uint8_t)len;
        uint32_t refsum = (uint16_t)~ref_checksum(ph, 12, 0);
        uint16_t want = ref_checksum(buf + off, n, refsum);
        uint16_t have = ntohs(net_fold(net_sum(buf + off, n, net_pseudo_sum(src, dst, 6, len))));
        check(have == want, "pseudo-header checksum", (long)n);
    }

    /* Ring: random writes, reads, consumes and out-of-order pokes against a plain FIFO. */
    for (int round = 0; round < 40; round++) {
        struct ring r;
        uint32_t cap = 1 + rnd() % 5000;
        if (ring_alloc(&r, cap) != 0) { check(0, "ring_alloc", cap); continue; }
        uint8_t *model = malloc(cap);
        uint32_t mlen = 0;
        uint8_t tmp[6000];
        for (int op = 0; op < 2000; op++) {
            uint32_t k = rnd() % (cap + 10);
            switch (rnd() % 4) {
            case 0: {
                for (uint32_t i = 0; i < k; i++) tmp[i] = (uint8_t)rnd();
                uint32_t w = ring_write(&r, tmp, k);
                uint32_t exp = k < cap - mlen ? k : cap - mlen;
                check(w == exp, "ring_write count", (long)w);
                memcpy(model + mlen, tmp, w);
                mlen += w;
                break;
            }
            case 1: {
                uint32_t n = k < mlen ? k : mlen;
                ring_peek(&r, 0, tmp, n);
                check(memcmp(tmp, model, n) == 0, "ring_peek", (long)n);
                ring_consume(&r, n);
                memmove(model, model + n, mlen - n);
                mlen -= n;
                break;
            }
            case 2: {
                /* Out-of-order data beyond len, then made part of the stream (as TCP does). */
                uint32_t room = cap - mlen;
                if (!room) break;
                uint32_t gap = rnd() % room, n = rnd() % (room - gap + 1);
                for (uint32_t i = 0; i < n; i++) tmp[i] = (uint8_t)rnd();
                ring_poke(&r, mlen + gap, tmp, n);
                uint8_t fill[6000];
                for (uint32_t i = 0; i < gap; i++) fill[i] = (uint8_t)rnd();
                ring_poke(&r, mlen, fill, gap);
                memcpy(model + mlen, fill, gap);
                memcpy(model + mlen + gap, tmp, n);
                r.len += gap + n;
                mlen += gap + n;
                break;
            }
            default: {
                if (!mlen) break;
                uint32_t o = rnd() % mlen, n = rnd() % (mlen - o + 1);
                ring_peek(&r, o, tmp, n);
                check(memcmp(tmp, model + o, n) == 0, "ring_peek at offset", (long)o);
            }
            }
            check(r.len == mlen && r.len <= r.cap, "ring length", (long)r.len);
        }
        ring_free(&r);
        free(model);
    }

    /* inet_pton / inet_ntop. */
    static const char *good[] = {"0.0.0.0", "10.73.0.2", "255.255.255.255", "1.2.3.4", "192.168.100.200"};
    for (unsigned i = 0; i < sizeof good / sizeof *good; i++) {
        uint8_t a[4];
        char txt[16];
        int r = il_inet_pton(2, good[i], a);
        check(r == 1, "inet_pton good", (long)i);
        check(r == 1 && il_inet_ntop(2, a, txt, sizeof txt) && strcmp(txt, good[i]) == 0, "inet_ntop round trip", (long)i);
    }
    static const char *bad[] = {"", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1.2.3.-4", "01.2.3.4", "1..2.3", "1.2.3.4 ", " 1.2.3.4",
                                "a.b.c.d", "1.2.3.1234", "1.2.3.4x"};
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint8_t a[4];
        check(il_inet_pton(2, bad[i], a) == 0, "inet_pton rejects", (long)i);
    }
    uint8_t a[4] = {255, 255, 255, 255};
    char small[15];
    check(il_inet_ntop(2, a, small, sizeof small) == NULL, "inet_ntop short buffer", 0);
    check(il_inet_pton(10, "1.2.3.4", a) == -1, "inet_pton other family", 0);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
`;

describe('lib/net pieces compiled for the host', () => {
  it('checksum, ring buffer and address conversion agree with reference code', async () => {
    const dir = await freshDir('net-native-');
    const { includeDir, libDir } = sdkPaths();
    const gccInc = (await execa('gcc', ['-print-file-name=include'])).stdout.trim();
    const rename = ['inet_pton', 'inet_ntop', 'inet_addr', 'inet_aton', 'inet_ntoa', 'errno'].map((f) => `-D${f}=il_${f}`);
    const objs: string[] = [];
    for (const f of ['checksum.c', 'ring.c', 'inet.c']) {
      const obj = join(dir, f.replace('.c', '.o'));
      await execa('gcc', ['-O2', '-c', '-ffreestanding', '-fno-builtin', '-nostdinc', '-isystem', includeDir, '-isystem', gccInc,
        '-DILWACO_NET_UNITY', ...rename, join(libDir, 'net', f), '-o', obj]);
      objs.push(obj);
    }
    const src = join(dir, 'harness.c');
    await writeFile(src, HARNESS);
    const exe = join(dir, 'net-harness');
    await execa('gcc', ['-O2', '-w', src, ...objs, '-o', exe]);
    const r = await execa(exe, [], { reject: false, timeout: 60_000 });
    expect(r.stdout).toMatch(/^\d+ passed, 0 failed$/m);
    expect(r.exitCode).toBe(0);
  });
});
