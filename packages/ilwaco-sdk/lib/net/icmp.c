/* ICMP (RFC 792): answers echo requests and implements ilwaco_ping. Other types are counted and ignored. */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "net_internal.h"
#include <errno.h>
#include <string.h>

#define ICMP_ECHO_REPLY 0
#define ICMP_ECHO_REQUEST 8
#define PING_SLOTS 8
#define ICMP_MAX_PAYLOAD (1500 - IP_HDR - 8)

struct ping_wait {
    int used, answered;
    uint16_t id, seq;
    uint32_t dst;
    struct ilwaco_waitq wq;
};
static struct ping_wait pings[PING_SLOTS];
static uint16_t ping_seq;

static void send_echo(uint8_t type, uint32_t dst, uint16_t id, uint16_t seq, const uint8_t *data, uint32_t dlen) {
    uint8_t *f = netif_tx_buffer();
    if (!f) return;
    uint8_t *m = f + ETH_HDR + IP_HDR;
    m[0] = type;
    m[1] = 0;
    m[2] = m[3] = 0;
    wr16(m + 4, id);
    wr16(m + 6, seq);
    if (data) memcpy(m + 8, data, dlen);
    else
        for (uint32_t i = 0; i < dlen; i++) m[8 + i] = (uint8_t)i;
    uint16_t ck = net_fold(net_sum(m, 8 + dlen, 0));
    memcpy(m + 2, &ck, 2);
    ipv4_output(f, 8 + dlen, dst, IPPROTO_ICMP);
}

void icmp_input(uint8_t *m, uint32_t len, uint32_t src, uint32_t dst) {
    (void)dst;
    if (len < 8 || net_fold(net_sum(m, len, 0)) != 0) {
        NSTAT(icmp_drop_bad);
        return;
    }
    if (m[0] == ICMP_ECHO_REQUEST && m[1] == 0) {
        NSTAT(icmp_echo_requests);
        if (len - 8 > ICMP_MAX_PAYLOAD) return;
        NSTAT(icmp_echo_replies_sent);
        send_echo(ICMP_ECHO_REPLY, src, rd16(m + 4), rd16(m + 6), m + 8, len - 8);
        return;
    }
    if (m[0] == ICMP_ECHO_REPLY) {
        uint16_t id = rd16(m + 4), seq = rd16(m + 6);
        for (int i = 0; i < PING_SLOTS; i++) {
            struct ping_wait *p = &pings[i];
            if (p->used && !p->answered && p->id == id && p->seq == seq && p->dst == src) {
                NSTAT(icmp_echo_replies_received);
                p->answered = 1;
                __ilwaco_waitq_wake_all(&p->wq);
                return;
            }
        }
    }
    NSTAT(icmp_drop_other);
}

int ilwaco_ping(uint32_t dst, uint32_t payload, uint64_t timeout_us, uint64_t *rtt_us) {
    if (net_start() < 0) return -1;
    if (payload > ICMP_MAX_PAYLOAD) {
        errno = EINVAL;
        return -1;
    }
    struct ping_wait *p = NULL;
    for (int i = 0; i < PING_SLOTS && !p; i++)
        if (!pings[i].used) p = &pings[i];
    if (!p) {
        errno = ENOBUFS;
        return -1;
    }
    p->used = 1;
    p->answered = 0;
    p->id = (uint16_t)(0x1c00 + (p - pings));
    p->seq = ++ping_seq;
    p->dst = dst;
    uint64_t start = ilwaco_ticks(), deadline = start + timeout_us;
    uint32_t before = __net_stats.ip_drop_no_route;
    send_echo(ICMP_ECHO_REQUEST, dst, p->id, p->seq, NULL, payload);
    netif_flush();
    int rc = 0;
    if (__net_stats.ip_drop_no_route != before) {
        errno = ENETUNREACH;
        rc = -1;
    } else {
        while (!p->answered) {
            if (__ilwaco_waitq_sleep(&p->wq, deadline) != 0 && !p->answered) break;
        }
        if (p->answered) {
            if (rtt_us) *rtt_us = ilwaco_ticks() - start;
        } else {
            errno = ETIMEDOUT;
            rc = -1;
        }
    }
    p->used = 0;
    return rc;
}
#endif
