/*
 * UDP (RFC 768): datagrams to and from sockets. Each socket's receive queue is bounded by
 * SO_RCVBUF bytes and UDP_QUEUE_MAX datagrams; beyond that datagrams are dropped and counted.
 */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "tcp.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define UDP_HDR 8
#define UDP_MAX_PAYLOAD (1500 - IP_HDR - UDP_HDR)
#define UDP_QUEUE_MAX 64

void udp_input(uint8_t *u, uint32_t len, uint32_t src, uint32_t dst) {
    if (len < UDP_HDR) {
        NSTAT(udp_drop_short);
        return;
    }
    uint32_t ulen = rd16(u + 4);
    if (ulen < UDP_HDR || ulen > len) {
        NSTAT(udp_drop_short);
        return;
    }
    /* Checksum 0 means the sender did not compute one (RFC 768). */
    if (!net_rx_csum_valid && (u[6] | u[7]) && net_fold(net_sum(u, ulen, net_pseudo_sum(src, dst, IPPROTO_UDP, (uint16_t)ulen))) != 0) {
        NSTAT(udp_drop_checksum);
        return;
    }
    uint16_t sport, dport;
    memcpy(&sport, u, 2);
    memcpy(&dport, u + 2, 2);
    struct sock *s = sock_find_udp(dst == net_addr() ? dst : net_addr(), dport, src, sport);
    if (!s || s->shut_rd) {
        NSTAT(udp_drop_no_port);
        return;
    }
    uint32_t n = ulen - UDP_HDR;
    if (s->dq_count >= UDP_QUEUE_MAX || s->dq_bytes + n > s->rcvbuf) {
        NSTAT(udp_drop_queue_full);
        return;
    }
    struct dgram *d = malloc(sizeof *d + n);
    if (!d) {
        NSTAT(udp_drop_queue_full);
        return;
    }
    d->next = NULL;
    d->src = src;
    d->sport = sport;
    d->len = n;
    memcpy(d->data, u + UDP_HDR, n);
    if (s->dq_tail) s->dq_tail->next = d;
    else s->dq_head = d;
    s->dq_tail = d;
    s->dq_bytes += n;
    s->dq_count++;
    NSTAT(udp_rx);
    sock_wakeup(s);
}

ssize_t udp_send(struct sock *s, const void *buf, size_t len, int flags, uint32_t dst, uint16_t dport) {
    (void)flags;
    if (len > UDP_MAX_PAYLOAD) {
        errno = EMSGSIZE;
        return -1;
    }
    if (dport == 0 || dst == 0) {
        errno = EINVAL;
        return -1;
    }
    if (!s->lport && !(s->lport = sock_ephemeral_port(SOCK_DGRAM))) {
        errno = EADDRINUSE;
        return -1;
    }
    uint8_t *f = netif_tx_buffer();
    if (!f) {
        errno = ENOBUFS;
        return -1;
    }
    uint8_t *u = f + ETH_HDR + IP_HDR;
    memcpy(u, &s->lport, 2);
    memcpy(u + 2, &dport, 2);
    wr16(u + 4, (uint16_t)(UDP_HDR + len));
    u[6] = u[7] = 0;
    memcpy(u + UDP_HDR, buf, len);
    if (!net_csum_offload) { /* else the NIC fills it in (FRAME_FLAG_TX_CSUM) */
        uint16_t ck = net_fold(net_sum(u, UDP_HDR + len, net_pseudo_sum(net_addr(), dst, IPPROTO_UDP, (uint16_t)(UDP_HDR + len))));
        if (ck == 0) ck = 0xffff; /* 0 would mean "no checksum" */
        memcpy(u + 6, &ck, 2);
    }
    if (ipv4_output(f, UDP_HDR + (uint32_t)len, dst, IPPROTO_UDP) < 0) {
        errno = ENETUNREACH;
        return -1;
    }
    NSTAT(udp_tx);
    netif_flush();
    return (ssize_t)len;
}

ssize_t udp_recv(struct sock *s, void *buf, size_t len, int flags, struct sockaddr_in *from) {
    int nb = s->nonblock || (flags & MSG_DONTWAIT);
    uint32_t gen = s->gen;
    uint64_t deadline = sock_deadline(s->rcvtimeo);
    while (!s->dq_head) {
        if (s->shut_rd) return 0;
        if (nb) {
            errno = EAGAIN;
            return -1;
        }
        if (sock_wait(s, gen, deadline) < 0) return -1;
    }
    struct dgram *d = s->dq_head;
    size_t n = d->len < len ? d->len : len;
    memcpy(buf, d->data, n);
    memset(from, 0, sizeof *from);
    from->sin_family = AF_INET;
    from->sin_addr.s_addr = d->src;
    from->sin_port = d->sport;
    if (!(flags & MSG_PEEK)) {
        s->dq_head = d->next;
        if (!s->dq_head) s->dq_tail = NULL;
        s->dq_bytes -= d->len;
        s->dq_count--;
        free(d);
    }
    return (ssize_t)n;
}

void udp_flush_queue(struct sock *s) {
    struct dgram *d = s->dq_head;
    while (d) {
        struct dgram *n = d->next;
        free(d);
        d = n;
    }
    s->dq_head = s->dq_tail = NULL;
    s->dq_bytes = 0;
    s->dq_count = 0;
}
#endif
