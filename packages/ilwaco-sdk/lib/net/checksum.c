/*
 * Internet checksum (RFC 1071). Sums are taken over 16-bit words in the guest's native (little-
 * endian) order; RFC 1071 section 2(B) shows the folded result is byte-order independent, so
 * callers store it with a native 16-bit store and verify by checking the sum folds to 0xffff.
 */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "net_internal.h"

uint32_t net_sum(const void *data, size_t len, uint32_t sum) {
    const uint8_t *p = data;
    uint16_t w;
    while (len >= 8) {
        uint32_t a, b;
        __builtin_memcpy(&a, p, 4);
        __builtin_memcpy(&b, p + 4, 4);
        sum += (a & 0xffff) + (a >> 16) + (b & 0xffff) + (b >> 16);
        /* Fold now and then so the 32-bit accumulator cannot overflow on long buffers. */
        if (sum & 0x80000000u) sum = (sum & 0xffff) + (sum >> 16);
        p += 8;
        len -= 8;
    }
    while (len >= 2) {
        __builtin_memcpy(&w, p, 2);
        sum += w;
        p += 2;
        len -= 2;
    }
    if (len) sum += p[0]; /* odd byte: the high-order byte of a zero-padded word in network order */
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
