/*
 * Congestion control: slow start and congestion avoidance (RFC 5681 3.1), fast retransmit /
 * fast recovery (RFC 5681 3.2) with the NewReno modification for partial acknowledgments
 * (RFC 6582 3.2). All quantities in bytes.
 */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "tcp.h"

#define CWND_MAX (4u * 1024u * 1024u)

uint32_t tcp_flight_size(const struct tcb *t) { return t->snd_max - t->snd_una; }

void tcp_cc_init(struct tcb *t) {
    /* RFC 5681 3.1 eq. 3: initial window. */
    uint32_t m = t->mss;
    t->cwnd = m > 2190 ? 2 * m : (m > 1095 ? 3 * m : 4 * m);
    t->ssthresh = CWND_MAX; /* "arbitrarily high" */
    t->recover = t->iss;
    t->dupacks = 0;
    t->in_recovery = 0;
    t->ca_acc = 0;
}

static uint32_t half_flight(const struct tcb *t) {
    /* RFC 5681 eq. 4 */
    uint32_t h = tcp_flight_size(t) / 2;
    return h > 2 * t->mss ? h : 2 * t->mss;
}

/* Resend the first unacknowledged segment (or the FIN alone). */
static void retransmit_first(struct tcb *t) {
    uint32_t len = t->snd.len < t->mss ? t->snd.len : t->mss;
    uint8_t flags = TH_ACK;
    if (t->fin_sent && t->snd_una + len == t->fin_seq) flags |= TH_FIN;
    if (len == 0 && !(flags & TH_FIN)) return;
    NSTAT(tcp_retransmits);
    t->rtt_timing = 0; /* Karn */
    tcp_send_segment(t, t->snd_una, len, flags);
}

void tcp_cc_dupack(struct tcb *t) {
    NSTAT(tcp_dup_acks);
    t->dupacks++;
    if (t->in_recovery) {
        /* RFC 5681 3.2 step 4: each further duplicate means a segment left the network. */
        t->cwnd += t->mss;
        return;
    }
    if (t->dupacks != 3) return;
    /* RFC 6582 3.2 step 2: only when this loss is new (past the last recovery point). */
    if (!SEQ_GT(t->snd_una, t->recover)) return;
    NSTAT(tcp_fast_retransmits);
    t->ssthresh = half_flight(t);
    t->recover = t->snd_max;
    retransmit_first(t);
    t->cwnd = t->ssthresh + 3 * t->mss;
    t->in_recovery = 1;
    tcp_arm_rexmt(t);
}

void tcp_cc_ack(struct tcb *t, uint32_t ack, uint32_t acked) {
    t->dupacks = 0;
    if (t->in_recovery) {
        if (SEQ_GEQ(ack, t->recover)) {
            /* Full acknowledgment (RFC 6582 3.2 step 3, option 1). */
            uint32_t fl = tcp_flight_size(t);
            uint32_t c = (fl > t->mss ? fl : t->mss) + t->mss;
            t->cwnd = c < t->ssthresh ? c : t->ssthresh;
            t->in_recovery = 0;
            t->ca_acc = 0;
        } else {
            /* Partial acknowledgment (step 4): the next hole is lost too; resend it at once
             * and deflate the window by what was acknowledged. */
            NSTAT(tcp_partial_acks);
            retransmit_first(t);
            t->cwnd = t->cwnd > acked ? t->cwnd - acked : 0;
            if (acked >= t->mss) t->cwnd += t->mss;
            if (t->cwnd < t->mss) t->cwnd = t->mss;
            tcp_arm_rexmt(t);
        }
        return;
    }
    if (t->cwnd < t->ssthresh) {
        /* Slow start (RFC 5681 eq. 2). */
        t->cwnd += acked < t->mss ? acked : t->mss;
    } else {
        /* Congestion avoidance: about one SMSS per RTT, by byte counting. */
        t->ca_acc += acked;
        if (t->ca_acc >= t->cwnd) {
            t->ca_acc -= t->cwnd;
            t->cwnd += t->mss;
        }
    }
    if (t->cwnd > CWND_MAX) t->cwnd = CWND_MAX;
}

void tcp_cc_timeout(struct tcb *t) {
    /* RFC 5681 3.1 eq. 4 and "loss window"; RFC 6582 section 4: recover = highest sent. */
    t->ssthresh = half_flight(t);
    t->cwnd = t->mss;
    t->in_recovery = 0;
    t->dupacks = 0;
    t->ca_acc = 0;
    t->recover = t->snd_max;
}
#endif
