/*
 * Internet checksum (RFC 1071). Sums are taken over 16-bit words in the guest's native (little-
 * endian) order; RFC 1071 section 2(B) shows the folded result is byte-order independent, so
 * callers store it with a native 16-bit store and verify by checking the sum folds to 0xffff.
 */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "net_internal.h"

int net_csum_offload;
int net_rx_csum_valid;

uint32_t net_sum(const void *data, size_t len, uint32_t sum) {
    const uint8_t *p = data;
    /* 32-bit words into a 64-bit accumulator (add/adc on i386): the ones' complement sum of
     * 16-bit words equals the folded sum of 32-bit words (RFC 1071 section 2(C), "parallel
     * summation"), and 2^32 carries cannot overflow 64 bits. */
    uint64_t acc = sum;
    while (len >= 16) {
        uint32_t a, b, c, d;
        __builtin_memcpy(&a, p, 4);
        __builtin_memcpy(&b, p + 4, 4);
        __builtin_memcpy(&c, p + 8, 4);
        __builtin_memcpy(&d, p + 12, 4);
        acc += (uint64_t)a + b + c + d;
        p += 16;
        len -= 16;
    }
    while (len >= 4) {
        uint32_t a;
        __builtin_memcpy(&a, p, 4);
        acc += a;
        p += 4;
        len -= 4;
    }
    uint16_t w;
    if (len >= 2) {
        __builtin_memcpy(&w, p, 2);
        acc += w;
        p += 2;
        len -= 2;
    }
    if (len) acc += p[0]; /* odd byte: the high-order byte of a zero-padded word in network order */
    acc = (acc & 0xffffffffu) + (acc >> 32);
    acc = (acc & 0xffffffffu) + (acc >> 32);
    sum = (uint32_t)(acc & 0xffff) + (uint32_t)(acc >> 16);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return sum;
}

uint16_t net_fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

uint32_t net_pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len) {
    uint32_t sum = (src & 0xffff) + (src >> 16) + (dst & 0xffff) + (dst >> 16);
    sum += (uint32_t)proto << 8;    /* the bytes {0, proto} loaded little-endian */
    sum += htons(len);
    return sum;
}
#endif
