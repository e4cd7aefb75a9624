/*
 * TCP output (RFC 9293 3.8.6, RFC 5681): builds segments straight into the NIC driver's Tx
 * buffers. What may be sent is bounded by the peer's window, the congestion window, Nagle's
 * algorithm (unless TCP_NODELAY) and sender-side silly window avoidance; a FIN follows the
 * last queued byte once the application has shut down writing.
 */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "tcp.h"

uint32_t tcp_rcv_window(struct tcb *t) {
    uint32_t space = t->rcv.buf ? ring_space(&t->rcv) : (t->state == TCPS_SYN_RCVD || t->state == TCPS_SYN_SENT ? t->rcvbuf_size : 0);
    if (space > TCP_MAX_WINDOW) space = TCP_MAX_WINDOW;
    uint32_t right = t->rcv_nxt + space;
    /* Receiver SWS avoidance (RFC 9293 3.8.6.2.2): move the right edge only by a useful amount. */
    uint32_t step = t->rcvbuf_size / 2 < t->mss ? t->rcvbuf_size / 2 : t->mss;
    if (SEQ_GT(right, t->rcv_adv) && SEQ_GT(t->rcv_adv, t->rcv_nxt) && right - t->rcv_adv < step) right = t->rcv_adv;
    /* Never shrink an offered window (RFC 9293 3.8.6.2.2). */
    if (SEQ_LT(right, t->rcv_adv)) right = t->rcv_adv;
    uint32_t w = right - t->rcv_nxt;
    return w > TCP_MAX_WINDOW ? TCP_MAX_WINDOW : w;
}

void tcp_send_segment(struct tcb *t, uint32_t seq, uint32_t len, uint8_t flags) {
    uint8_t *f = netif_tx_buffer();
    if (!f) return;
    uint8_t *h = f + ETH_HDR + IP_HDR;
    uint32_t hl = TCP_HDR + ((flags & TH_SYN) ? 4 : 0);
    __builtin_memcpy(h, &t->lport, 2);
    __builtin_memcpy(h + 2, &t->fport, 2);
    wr32(h + 4, seq);
    wr32(h + 8, (flags & TH_ACK) ? t->rcv_nxt : 0);
    h[12] = (uint8_t)((hl / 4) << 4);
    h[13] = flags;
    uint32_t win = tcp_rcv_window(t);
    wr16(h + 14, (uint16_t)win);
    if (flags & TH_ACK) t->rcv_adv = t->rcv_nxt + win;
    h[16] = h[17] = h[18] = h[19] = 0;
    if (flags & TH_SYN) {
        /* MSS option (RFC 9293 3.7.1): what fits our MTU without fragmentation. */
        h[20] = 2;
        h[21] = 4;
        wr16(h + 22, (uint16_t)(__net_if.mtu - IP_HDR - TCP_HDR));
    }
    if (len) ring_peek(&t->snd, seq - t->snd_una, h + hl, len);
    if (!net_csum_offload) { /* else the NIC fills it in (FRAME_FLAG_TX_CSUM) */
        uint16_t ck = net_fold(net_sum(h, hl + len, net_pseudo_sum(t->laddr, t->faddr, IPPROTO_TCP, (uint16_t)(hl + len))));
        __builtin_memcpy(h + 16, &ck, 2);
    }
    NSTAT(tcp_tx_segments);
    if (flags & TH_RST) NSTAT(tcp_rst_sent);
    if (flags & TH_ACK) {
        /* Any segment carries the ACK: no separate delayed ACK needed. */
        t->ack_now = 0;
        t->delack_segs = 0;
        timer_cancel(&t->delack);
    }
    ipv4_output(f, hl + len, t->faddr, IPPROTO_TCP);
}

void tcp_respond_rst(uint32_t laddr, uint16_t lport, uint32_t faddr, uint16_t fport, uint32_t seq, uint32_t ack, uint8_t flags) {
    uint8_t *f = netif_tx_buffer();
    if (!f) return;
    uint8_t *h = f + ETH_HDR + IP_HDR;
    __builtin_memcpy(h, &lport, 2);
    __builtin_memcpy(h + 2, &fport, 2);
    wr32(h + 4, seq);
    wr32(h + 8, ack);
    h[12] = (TCP_HDR / 4) << 4;
    h[13] = flags;
    for (int i = 14; i < 20; i++) h[i] = 0;
    if (!net_csum_offload) {
        uint16_t ck = net_fold(net_sum(h, TCP_HDR, net_pseudo_sum(laddr, faddr, IPPROTO_TCP, TCP_HDR)));
        __builtin_memcpy(h + 16, &ck, 2);
    }
    NSTAT(tcp_tx_segments);
    NSTAT(tcp_rst_sent);
    ipv4_output(f, TCP_HDR, faddr, IPPROTO_TCP);
}

static int fin_state(int s) { return s == TCPS_FIN_WAIT_1 || s == TCPS_CLOSING || s == TCPS_LAST_ACK; }

void tcp_output(struct tcb *t) {
    switch (t->state) {
    case TCPS_CLOSED:
    case TCPS_LISTEN:
        return;
    case TCPS_SYN_SENT:
    case TCPS_SYN_RCVD:
        /* (Re)send our SYN: at the start, after a timeout rewound snd_nxt, or when the peer
         * retransmitted its SYN (ack_now). */
        if (t->snd_nxt == t->iss || t->ack_now) {
            if (t->snd_nxt != t->iss || t->snd_max != t->iss) NSTAT(tcp_retransmits);
            else if (!t->rtt_timing) {
                t->rtt_timing = 1;
                t->rtt_seq = t->iss + 1;
                t->rtt_start = ilwaco_ticks();
            }
            tcp_send_segment(t, t->iss, 0, t->state == TCPS_SYN_SENT ? TH_SYN : TH_SYN | TH_ACK);
            t->snd_nxt = t->snd_max = t->iss + 1;
            if (!t->rexmt.armed) tcp_arm_rexmt(t);
        }
        t->ack_now = 0;
        return;
    case TCPS_TIME_WAIT:
        if (t->ack_now) tcp_send_segment(t, t->snd_nxt, 0, TH_ACK);
        return;
    default:
        break;
    }
    int sent = 0;
    for (int guard = 0; guard < 256; guard++) {
        uint32_t data_end = t->snd_una + t->snd.len;
        uint32_t avail = SEQ_LT(t->snd_nxt, data_end) ? data_end - t->snd_nxt : 0;
        uint32_t wnd = t->snd_wnd < t->cwnd ? t->snd_wnd : t->cwnd;
        uint32_t off = t->snd_nxt - t->snd_una;
        uint32_t usable = wnd > off ? wnd - off : 0;
        uint32_t len = avail;
        if (len > t->mss) len = t->mss;
        if (len > usable) len = usable;
        int fin = t->fin_queued && fin_state(t->state) && t->snd_nxt + len == data_end &&
                  (!t->fin_sent || SEQ_LEQ(t->snd_nxt + len, t->fin_seq));
        if (len == 0 && !fin) break;
        if (len < t->mss && !fin) {
            int in_flight = t->snd_nxt != t->snd_una;
            /* Nagle (RFC 9293 3.7.4) in Minshall's variant: hold a small segment only while
             * an earlier small one is unacknowledged, so the tail of a bulk write does not
             * wait for a delayed ACK of full-sized segments. */
            if (len == avail && !t->nodelay && SEQ_GT(t->snd_sml, t->snd_una)) break;
            /* Sender SWS avoidance (RFC 9293 3.8.6.2.1): no small window-limited segments
             * while something is outstanding. */
            if (len < avail && in_flight && len < t->max_sndwnd / 2) break;
        }
        uint8_t flags = TH_ACK;
        if (fin) flags |= TH_FIN;
        if (len && len == avail) flags |= TH_PSH;
        if (SEQ_LT(t->snd_nxt, t->snd_max)) NSTAT(tcp_retransmits);
        else if (!t->rtt_timing && len) {
            t->rtt_timing = 1;
            t->rtt_seq = t->snd_nxt + len;
            t->rtt_start = ilwaco_ticks();
        }
        tcp_send_segment(t, t->snd_nxt, len, flags);
        if (len < t->mss) t->snd_sml = t->snd_nxt + len;
        if (fin && !t->fin_sent) {
            t->fin_sent = 1;
            t->fin_seq = t->snd_nxt + len;
        }
        t->snd_nxt += len + (fin ? 1 : 0);
        if (SEQ_GT(t->snd_nxt, t->snd_max)) t->snd_max = t->snd_nxt;
        sent = 1;
        if (!t->rexmt.armed) tcp_arm_rexmt(t);
        if (fin) break;
    }
    if (!sent && t->ack_now) tcp_send_segment(t, t->snd_nxt, 0, TH_ACK);
    /* Persist (RFC 9293 3.8.6.1): data waiting, a zero window and nothing outstanding to
     * elicit an ACK: probe on the retransmission timer so a lost window update cannot
     * deadlock the connection. */
    if (t->snd_una == t->snd_max && t->snd.len > 0 && t->snd_wnd == 0 && !t->rexmt.armed) {
        t->probing = 1;
        tcp_arm_rexmt(t);
    }
}

void tcp_window_update(struct tcb *t) {
    if (t->state < TCPS_ESTABLISHED || t->state == TCPS_TIME_WAIT || !t->rcv.buf) return;
    uint32_t space = ring_space(&t->rcv);
    if (space > TCP_MAX_WINDOW) space = TCP_MAX_WINDOW;
    uint32_t adv = SEQ_GT(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
    /* RFC 9293 3.8.6.2.2: update when the window grew by 2 segments or half the buffer. */
    uint32_t grow = space > adv ? space - adv : 0;
    if (grow >= 2 * t->mss || grow >= t->rcvbuf_size / 2 || (adv == 0 && space >= t->mss)) {
        t->ack_now = 1;
        tcp_output(t);
    }
}
#endif
