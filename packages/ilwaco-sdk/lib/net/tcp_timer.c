/*
 * TCP timers: retransmission (RFC 6298, with exponential backoff; doubles as the SYN and
 * SYN-ACK retry timer and as the persist timer for zero windows), delayed ACK
 * (RFC 9293 3.8.6.3), and TIME-WAIT / orphaned FIN-WAIT-2. Each is armed only while it has
 * something to do, so an idle connection-free VM has none.
 */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "tcp.h"

void tcp_rtt_sample(struct tcb *t, uint32_t r) {
    if (r == 0) r = 1;
    if (!t->have_rtt) {
        /* RFC 6298 2.2 */
        t->srtt = r;
        t->rttvar = r / 2;
        t->have_rtt = 1;
    } else {
        /* RFC 6298 2.3, alpha 1/8, beta 1/4 */
        uint32_t delta = t->srtt > r ? t->srtt - r : r - t->srtt;
        t->rttvar = (3 * t->rttvar + delta) / 4;
        t->srtt = (7 * t->srtt + r) / 8;
    }
    uint32_t rto = t->srtt + (4 * t->rttvar > 1 ? 4 * t->rttvar : 1);
    if (rto < TCP_RTO_MIN) rto = TCP_RTO_MIN;
    if (rto > TCP_RTO_MAX) rto = TCP_RTO_MAX;
    t->rto = rto;
}

void tcp_arm_rexmt(struct tcb *t) { timer_arm(&t->rexmt, ilwaco_ticks() + t->rto); }

static void backoff(struct tcb *t) {
    /* RFC 6298 5.5 */
    t->rto = t->rto * 2 > TCP_RTO_MAX ? TCP_RTO_MAX : t->rto * 2;
}

static void rexmt_fire(void *arg) {
    struct tcb *t = arg;
    switch (t->state) {
    case TCPS_SYN_SENT:
    case TCPS_SYN_RCVD:
        if (++t->retries > (t->state == TCPS_SYN_SENT ? TCP_SYN_RETRIES : TCP_SYNACK_RETRIES)) {
            NSTAT(tcp_timeouts);
            tcp_close(t, ETIMEDOUT);
            return;
        }
        backoff(t);
        t->rtt_timing = 0;
        t->snd_nxt = t->iss;
        tcp_output(t);
        return;
    case TCPS_ESTABLISHED:
    case TCPS_FIN_WAIT_1:
    case TCPS_CLOSE_WAIT:
    case TCPS_CLOSING:
    case TCPS_LAST_ACK:
        break;
    default:
        return;
    }
    if (t->snd_wnd == 0 && t->snd.len > 0 && t->snd_max - t->snd_una <= 1) {
        /* Persist: the peer's window is closed. Probe with one byte (RFC 9293 3.8.6.1); this
         * is not a loss, so neither cwnd nor the retry limit is touched. */
        NSTAT(tcp_window_probes);
        t->probing = 1;
        if (t->snd_max == t->snd_una) {
            t->snd_nxt = t->snd_max = t->snd_una + 1;
        } else {
            NSTAT(tcp_retransmits);
        }
        tcp_send_segment(t, t->snd_una, 1, TH_ACK);
        backoff(t);
        tcp_arm_rexmt(t);
        return;
    }
    if (t->snd_una == t->snd_max) return; /* everything was acknowledged meanwhile */
    if (++t->retries > TCP_DATA_RETRIES) {
        NSTAT(tcp_timeouts);
        tcp_drop(t, ETIMEDOUT);
        return;
    }
    NSTAT(tcp_rto_expirations);
    backoff(t);
    tcp_cc_timeout(t);
    /* Karn: no RTT sample from a retransmitted segment; resend from the first unacknowledged
     * byte (go-back-N within the loss window). */
    t->rtt_timing = 0;
    t->snd_nxt = t->snd_una;
    tcp_output(t);
    if (!t->rexmt.armed) tcp_arm_rexmt(t);
}

static void delack_fire(void *arg) {
    struct tcb *t = arg;
    if (t->state < TCPS_ESTABLISHED) return;
    NSTAT(tcp_delayed_acks);
    t->ack_now = 1;
    tcp_output(t);
}

static void tw_fire(void *arg) {
    struct tcb *t = arg;
    if (t->state == TCPS_TIME_WAIT || (t->state == TCPS_FIN_WAIT_2 && !t->sock)) tcp_close(t, 0);
}

/*
 * The end of TIME-WAIT (and of an orphaned FIN-WAIT-2) sends nothing, so its timer is
 * deferrable: it never wakes the VM (a server that idles after its last request would wake 30 s
 * later just to free a TCB — for a swapped-out VM, a swap-in and a swap-out). The connection
 * is deleted at the first poll after its deadline, or here, when a segment looks it up first:
 * past 2 MSL it no longer exists (RFC 9293 3.3.2, 3.6.1).
 */
int tcp_reap_expired(struct tcb *t) {
    if (!t->tw.armed || t->tw.deadline > ilwaco_ticks()) return 0;
    if (t->state != TCPS_TIME_WAIT && !(t->state == TCPS_FIN_WAIT_2 && !t->sock)) return 0;
    timer_cancel(&t->tw);
    tcp_close(t, 0);
    return 1;
}

void tcp_timers_init(struct tcb *t) {
    timer_init(&t->rexmt, rexmt_fire, t);
    timer_init(&t->delack, delack_fire, t);
    timer_init_deferrable(&t->tw, tw_fire, t);
    t->rto = TCP_RTO_INITIAL;
}
#endif
