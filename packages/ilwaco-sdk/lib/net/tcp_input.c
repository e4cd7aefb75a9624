/*
 * TCP input (RFC 9293 3.10.7 "SEGMENT ARRIVES") and connection bookkeeping: demultiplexing,
 * passive opens with a bounded half-open queue, the synchronized-state checks in RFC order
 * (sequence acceptability, RST with RFC 5961 challenge ACKs, SYN, ACK, data, FIN),
 * reassembly into the receive ring, and connection teardown. Every malformed or unacceptable
 * segment is dropped and counted.
 */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "tcp.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HASH_SIZE 256
#define TCP_MIN_MSS 88 /* a peer announcing a tiny MSS could make us send one byte per segment */

static struct tcb *hash_tab[HASH_SIZE];
static struct tcb *all_head;
static int n_conns, n_half_open, n_time_wait;

static unsigned hash_of(uint32_t faddr, uint16_t fport, uint16_t lport) {
    uint32_t h = faddr ^ ((uint32_t)fport << 16) ^ lport;
    h ^= h >> 16;
    h *= 0x45d9f3bu;
    h ^= h >> 13;
    return h & (HASH_SIZE - 1);
}

struct tcb *tcp_lookup(uint32_t laddr, uint16_t lport, uint32_t faddr, uint16_t fport) {
    for (struct tcb *t = hash_tab[hash_of(faddr, fport, lport)]; t; t = t->hnext)
        if (t->lport == lport && t->fport == fport && t->faddr == faddr && t->laddr == laddr)
            return t->tw.armed && tcp_reap_expired(t) ? NULL : t; /* deferred end (tcp_timer.c) */
    return NULL;
}

void tcp_hash_insert(struct tcb *t) {
    unsigned h = hash_of(t->faddr, t->fport, t->lport);
    t->hnext = hash_tab[h];
    hash_tab[h] = t;
    t->all_next = all_head;
    t->all_prev = NULL;
    if (all_head) all_head->all_prev = t;
    all_head = t;
    t->hashed = 1;
    n_conns++;
}

static void unhash(struct tcb *t) {
    if (!t->hashed) return;
    for (struct tcb **l = &hash_tab[hash_of(t->faddr, t->fport, t->lport)]; *l; l = &(*l)->hnext) {
        if (*l == t) {
            *l = t->hnext;
            break;
        }
    }
    if (t->all_prev) t->all_prev->all_next = t->all_next;
    else all_head = t->all_next;
    if (t->all_next) t->all_next->all_prev = t->all_prev;
    t->hashed = 0;
    n_conns--;
}

int tcp_connections(void) { return n_conns; }
int ilwaco_net_tcp_connections(void) { return n_conns; }

/* True when some connection (any state) uses local port lport. */
int tcp_port_in_use(uint16_t lport) {
    for (struct tcb *t = all_head; t; t = t->all_next)
        if (t->lport == lport) return 1;
    return 0;
}

struct tcb *tcp_new(void) {
    struct tcb *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    tcp_timers_init(t);
    t->state = TCPS_CLOSED;
    t->mss = TCP_DEFAULT_MSS;
    t->sndbuf_size = t->rcvbuf_size = TCP_BUF_DEFAULT;
    return t;
}

int tcp_alloc_buffers(struct tcb *t) {
    if (!t->snd.buf && ring_alloc(&t->snd, t->sndbuf_size) < 0) return -1;
    if (!t->rcv.buf && ring_alloc(&t->rcv, t->rcvbuf_size) < 0) {
        ring_free(&t->snd);
        return -1;
    }
    return 0;
}

void tcp_notify(struct tcb *t) {
    if (t->sock) sock_wakeup(t->sock);
    else if (t->listener) sock_wakeup(t->listener);
}

/* Remove t from its listener's half-open list or accept queue. */
static void dequeue(struct tcb *t) {
    struct sock *l = t->listener;
    if (!l || !t->queued) return;
    struct tcb **head = t->queued == 1 ? &l->half_head : &l->acc_head;
    struct tcb **tail = t->queued == 1 ? &l->half_tail : &l->acc_tail;
    struct tcb *prev = NULL;
    for (struct tcb **p = head; *p; prev = *p, p = &(*p)->qnext) {
        if (*p == t) {
            *p = t->qnext;
            if (*tail == t) *tail = prev;
            break;
        }
    }
    if (t->queued == 1) {
        l->half_len--;
        n_half_open--;
    } else {
        l->acc_len--;
    }
    t->qnext = NULL;
    t->queued = 0;
}

static void enqueue(struct tcb *t, int which) {
    struct sock *l = t->listener;
    struct tcb **head = which == 1 ? &l->half_head : &l->acc_head;
    struct tcb **tail = which == 1 ? &l->half_tail : &l->acc_tail;
    t->qnext = NULL;
    if (*tail) (*tail)->qnext = t;
    else *head = t;
    *tail = t;
    t->queued = which;
    if (which == 1) {
        l->half_len++;
        n_half_open++;
    } else {
        l->acc_len++;
    }
}

void tcp_close(struct tcb *t, int err) {
    if (t->state == TCPS_TIME_WAIT) n_time_wait--;
    int was_queued = t->queued;
    dequeue(t);
    t->state = TCPS_CLOSED;
    timer_cancel(&t->rexmt);
    timer_cancel(&t->delack);
    timer_cancel(&t->tw);
    unhash(t);
    ring_free(&t->snd);
    if (err) t->error = err;
    if (t->sock) {
        tcp_notify(t);
        return; /* the socket frees the TCB on close(); unread data stays readable */
    }
    if (was_queued == 2 && t->listener) sock_wakeup(t->listener);
    ring_free(&t->rcv);
    free(t);
}

void tcp_drop(struct tcb *t, int err) {
    if (t->state >= TCPS_SYN_RCVD && t->state != TCPS_TIME_WAIT) tcp_send_segment(t, t->snd_nxt, 0, TH_RST | TH_ACK);
    NSTAT(tcp_resets);
    tcp_close(t, err);
}

void tcp_enter_time_wait(struct tcb *t) {
    t->state = TCPS_TIME_WAIT;
    timer_cancel(&t->rexmt);
    timer_cancel(&t->delack);
    ring_free(&t->snd);
    if (!t->sock) ring_free(&t->rcv);
    t->tw_since = ilwaco_ticks();
    timer_arm(&t->tw, t->tw_since + 2 * TCP_MSL_US);
    n_time_wait++;
    /* Bounded: reuse the oldest TIME-WAIT connection's memory rather than grow. */
    if (n_time_wait > TCP_MAX_TIME_WAIT) {
        struct tcb *old = NULL;
        for (struct tcb *x = all_head; x; x = x->all_next)
            if (x != t && x->state == TCPS_TIME_WAIT && !x->sock && (!old || x->tw_since < old->tw_since)) old = x;
        if (old) {
            NSTAT(tcp_time_wait_recycled);
            tcp_close(old, 0);
        }
    }
    tcp_notify(t);
}

struct tcb *tcp_accept_pop(struct sock *l) {
    struct tcb *t = l->acc_head;
    if (t) dequeue(t);
    return t;
}

/* ---- passive open ---- */

static int half_open_limit(const struct sock *l) {
    int n = 2 * l->backlog;
    return n < 16 ? 16 : n;
}

static void listen_input(struct sock *l, uint32_t laddr, uint16_t lport, uint32_t faddr, uint16_t fport, uint8_t flags,
                         uint32_t seq, uint32_t ack, uint32_t dlen, uint16_t wnd, uint32_t peer_mss) {
    if (flags & TH_RST) return; /* RFC 9293: an RST to a listener is ignored */
    if (flags & TH_ACK) {
        NSTAT(tcp_drop_no_socket);
        tcp_respond_rst(laddr, lport, faddr, fport, ack, 0, TH_RST);
        return;
    }
    if (!(flags & TH_SYN)) {
        NSTAT(tcp_drop_bad_flags);
        return;
    }
    (void)dlen; /* data on a SYN is not queued; the peer sends it again after the handshake */
    /* SYN flood: bounded half-open queue, per listener and in all; the oldest embryonic
     * connection makes way (it is the most likely to be bogus). */
    if (l->half_len >= half_open_limit(l) || n_half_open >= TCP_MAX_HALF_OPEN) {
        struct tcb *victim = l->half_head;
        if (!victim) {
            NSTAT(tcp_drop_syn_evicted);
            return;
        }
        NSTAT(tcp_drop_syn_evicted);
        tcp_close(victim, 0);
    }
    struct tcb *t = tcp_new();
    if (!t) return;
    t->laddr = laddr;
    t->lport = lport;
    t->faddr = faddr;
    t->fport = fport;
    t->listener = l;
    t->state = TCPS_SYN_RCVD;
    t->irs = seq;
    t->rcv_nxt = seq + 1;
    t->rcv_adv = t->rcv_nxt;
    t->iss = net_random();
    t->snd_una = t->snd_nxt = t->snd_max = t->snd_sml = t->iss;
    t->snd_wnd = wnd;
    t->max_sndwnd = wnd;
    t->snd_wl1 = seq;
    t->snd_wl2 = t->iss;
    t->mss = peer_mss;
    t->sndbuf_size = l->sndbuf;
    t->rcvbuf_size = l->rcvbuf;
    t->nodelay = l->nodelay;
    tcp_cc_init(t);
    tcp_hash_insert(t);
    enqueue(t, 1);
    NSTAT(tcp_passive_opens);
    tcp_output(t);
}

/* ---- reassembly ---- */

/* Place dlen bytes at seq (rcv_nxt <= seq, inside the window) into the receive ring. */
static void reass(struct tcb *t, uint32_t seq, const uint8_t *data, uint32_t dlen) {
    uint32_t off = seq - t->rcv_nxt;
    uint32_t room = ring_space(&t->rcv);
    if (off >= room) {
        NSTAT(tcp_drop_out_of_window);
        return;
    }
    if (dlen > room - off) dlen = room - off;
    if (off > 0) {
        /* Out of order: keep it where it will belong and remember the range. */
        uint32_t s = seq, e = seq + dlen;
        int i = 0;
        while (i < t->ooo_n && SEQ_LT(t->ooo[i].end, s)) i++;
        /* Merge with every range it touches. */
        int j = i;
        while (j < t->ooo_n && SEQ_LEQ(t->ooo[j].start, e)) {
            if (SEQ_LT(t->ooo[j].start, s)) s = t->ooo[j].start;
            if (SEQ_GT(t->ooo[j].end, e)) e = t->ooo[j].end;
            j++;
        }
        if (j == i && t->ooo_n >= TCP_OOO_MAX) {
            NSTAT(tcp_drop_ooo_full);
            t->ack_now = 1;
            return;
        }
        ring_poke(&t->rcv, t->rcv.len + off, data, dlen);
        /* Replace ooo[i..j) with [s, e). */
        int removed = j - i;
        if (removed == 0) {
            memmove(&t->ooo[i + 1], &t->ooo[i], (size_t)(t->ooo_n - i) * sizeof t->ooo[0]);
            t->ooo_n++;
        } else if (removed > 1) {
            memmove(&t->ooo[i + 1], &t->ooo[j], (size_t)(t->ooo_n - j) * sizeof t->ooo[0]);
            t->ooo_n -= removed - 1;
        }
        t->ooo[i].start = s;
        t->ooo[i].end = e;
        NSTAT(tcp_ooo_segments);
        t->ack_now = 1; /* RFC 5681 4.2: a duplicate ACK at once, for fast retransmit */
        return;
    }
    ring_poke(&t->rcv, t->rcv.len, data, dlen);
    uint32_t end = seq + dlen;
    int filled = 0;
    while (t->ooo_n > 0 && SEQ_LEQ(t->ooo[0].start, end)) {
        if (SEQ_GT(t->ooo[0].end, end)) end = t->ooo[0].end;
        memmove(&t->ooo[0], &t->ooo[1], (size_t)(t->ooo_n - 1) * sizeof t->ooo[0]);
        t->ooo_n--;
        filled = 1;
    }
    t->rcv.len += end - t->rcv_nxt;
    t->rcv_nxt = end;
    if (filled || t->ooo_n > 0) {
        t->ack_now = 1; /* RFC 5681 4.2: ACK at once when a hole is (partly) filled */
    } else if (++t->delack_segs >= 2) {
        t->ack_now = 1; /* RFC 5681 4.2: at least every second full-sized segment */
    } else if (!t->delack.armed) {
        timer_arm(&t->delack, ilwaco_ticks() + TCP_DELACK_US);
    }
    tcp_notify(t);
}

/* The peer's FIN, now in order: RFC 9293 3.10.7.4 eighth step. */
static void fin_arrived(struct tcb *t) {
    t->rcv_nxt++;
    t->fin_rcvd = 1;
    t->fin_pending = 0;
    t->ack_now = 1;
    switch (t->state) {
    case TCPS_SYN_RCVD:
    case TCPS_ESTABLISHED:
        t->state = TCPS_CLOSE_WAIT;
        break;
    case TCPS_FIN_WAIT_1:
        if (t->fin_sent && SEQ_GT(t->snd_una, t->fin_seq)) {
            tcp_send_segment(t, t->snd_nxt, 0, TH_ACK);
            tcp_enter_time_wait(t);
        } else {
            t->state = TCPS_CLOSING;
        }
        break;
    case TCPS_FIN_WAIT_2:
        tcp_send_segment(t, t->snd_nxt, 0, TH_ACK);
        timer_cancel(&t->tw);
        tcp_enter_time_wait(t);
        break;
    default:
        break;
    }
    tcp_notify(t);
}

/* ---- SYN-SENT ---- */

static void syn_sent_input(struct tcb *t, uint8_t flags, uint32_t seq, uint32_t ack, uint16_t wnd, uint32_t peer_mss) {
    if (flags & TH_ACK) {
        if (SEQ_LEQ(ack, t->iss) || SEQ_GT(ack, t->snd_max)) {
            NSTAT(tcp_drop_bad_ack);
            if (!(flags & TH_RST)) tcp_respond_rst(t->laddr, t->lport, t->faddr, t->fport, ack, 0, TH_RST);
            return;
        }
    }
    if (flags & TH_RST) {
        NSTAT(tcp_rst_received);
        if (flags & TH_ACK) {
            NSTAT(tcp_resets);
            tcp_close(t, ECONNREFUSED);
        }
        return;
    }
    if (!(flags & TH_SYN)) {
        NSTAT(tcp_drop_bad_flags);
        return;
    }
    t->irs = seq;
    t->rcv_nxt = seq + 1;
    t->rcv_adv = t->rcv_nxt;
    t->mss = peer_mss;
    t->snd_wnd = wnd;
    t->max_sndwnd = wnd;
    t->snd_wl1 = seq;
    t->snd_wl2 = ack;
    tcp_cc_init(t);
    if (flags & TH_ACK) {
        t->snd_una = ack;
        if (SEQ_LT(t->snd_nxt, t->snd_una)) t->snd_nxt = t->snd_una;
        if (t->rtt_timing && t->retries == 0) tcp_rtt_sample(t, (uint32_t)(ilwaco_ticks() - t->rtt_start));
        t->rtt_timing = 0;
        t->retries = 0;
        timer_cancel(&t->rexmt);
        t->state = TCPS_ESTABLISHED;
        NSTAT(tcp_established);
        t->ack_now = 1;
        tcp_output(t);
        tcp_notify(t);
    } else {
        /* Simultaneous open (RFC 9293 3.5 figure 7). */
        t->state = TCPS_SYN_RCVD;
        t->ack_now = 1;
        tcp_output(t);
    }
}

/* ---- segment arrives ---- */

void tcp_input(uint8_t *seg, uint32_t len, uint32_t src, uint32_t dst) {
    NSTAT(tcp_rx_segments);
    if (len < TCP_HDR) {
        NSTAT(tcp_drop_short);
        return;
    }
    uint32_t off = (uint32_t)(seg[12] >> 4) * 4;
    if (off < TCP_HDR || off > len) {
        NSTAT(tcp_drop_hdrlen);
        return;
    }
    if (!net_rx_csum_valid && net_fold(net_sum(seg, len, net_pseudo_sum(src, dst, IPPROTO_TCP, (uint16_t)len))) != 0) {
        NSTAT(tcp_drop_checksum);
        return;
    }
    uint16_t sport, dport;
    memcpy(&sport, seg, 2);
    memcpy(&dport, seg + 2, 2);
    uint8_t flags = seg[13] & 0x3f;
    uint32_t seq = rd32(seg + 4), ack = rd32(seg + 8);
    uint16_t wnd = rd16(seg + 14);
    uint8_t *data = seg + off;
    uint32_t dlen = len - off;
    if (sport == 0 || dport == 0 || ((flags & TH_SYN) && (flags & (TH_FIN | TH_RST)))) {
        NSTAT(tcp_drop_bad_flags);
        return;
    }
    /* Options: only MSS matters to us; a malformed list is ignored from the bad option on. */
    uint32_t peer_mss = TCP_DEFAULT_MSS;
    for (uint32_t i = TCP_HDR; i < off;) {
        uint8_t kind = seg[i];
        if (kind == 0) break;
        if (kind == 1) {
            i++;
            continue;
        }
        if (i + 1 >= off) break;
        uint32_t olen = seg[i + 1];
        if (olen < 2 || i + olen > off) break;
        if (kind == 2 && olen == 4 && (flags & TH_SYN)) peer_mss = rd16(seg + i + 2);
        i += olen;
    }
    uint32_t our_mss = __net_if.mtu - IP_HDR - TCP_HDR;
    if (peer_mss > our_mss) peer_mss = our_mss;
    if (peer_mss < TCP_MIN_MSS) peer_mss = TCP_MIN_MSS;

    struct tcb *t = tcp_lookup(dst, dport, src, sport);
    if (!t) {
        struct sock *l = sock_find_listener(dst, dport);
        if (l) {
            listen_input(l, dst, dport, src, sport, flags, seq, ack, dlen, wnd, peer_mss);
            return;
        }
        /* CLOSED (RFC 9293 3.10.7.1): answer with a reset unless this is one. */
        NSTAT(tcp_drop_no_socket);
        if (flags & TH_RST) return;
        if (flags & TH_ACK) tcp_respond_rst(dst, dport, src, sport, ack, 0, TH_RST);
        else
            tcp_respond_rst(dst, dport, src, sport, 0, seq + dlen + ((flags & TH_SYN) ? 1 : 0) + ((flags & TH_FIN) ? 1 : 0),
                            TH_RST | TH_ACK);
        return;
    }
    if (t->state == TCPS_SYN_SENT) {
        syn_sent_input(t, flags, seq, ack, wnd, peer_mss);
        return;
    }

    /* First: sequence number acceptability (RFC 9293 3.10.7.4 table). */
    uint32_t rwnd = SEQ_GT(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
    uint32_t seglen = dlen + ((flags & TH_SYN) ? 1 : 0) + ((flags & TH_FIN) ? 1 : 0);
    int ok;
    if (seglen == 0) ok = rwnd == 0 ? seq == t->rcv_nxt : (SEQ_GEQ(seq, t->rcv_nxt) && SEQ_LT(seq, t->rcv_nxt + rwnd));
    else
        ok = rwnd != 0 && ((SEQ_GEQ(seq, t->rcv_nxt) && SEQ_LT(seq, t->rcv_nxt + rwnd)) ||
                           (SEQ_GEQ(seq + seglen - 1, t->rcv_nxt) && SEQ_LT(seq + seglen - 1, t->rcv_nxt + rwnd)));
    /* A zero window still takes in-sequence ACKs and RSTs (RFC 9293 3.10.7.4 note). */
    if (!ok && rwnd == 0 && seq == t->rcv_nxt) {
        ok = 1;
        if (dlen || (flags & TH_FIN)) {
            /* A window probe: its byte is dropped, and our ACK repeats the closed window. */
            NSTAT(tcp_drop_out_of_window);
            t->ack_now = 1;
        }
        dlen = 0;
        flags &= (uint8_t)~TH_FIN;
    }
    if (!ok) {
        NSTAT(tcp_drop_out_of_window);
        if (!(flags & TH_RST)) {
            t->ack_now = 1;
            tcp_output(t);
        }
        return;
    }
    /* Trim to the window: duplicate bytes at the front, bytes beyond the right edge. */
    if (flags & TH_SYN && SEQ_LT(seq, t->rcv_nxt)) {
        flags &= (uint8_t)~TH_SYN;
        seq++;
    }
    if (SEQ_LT(seq, t->rcv_nxt)) {
        uint32_t d = t->rcv_nxt - seq;
        if (d > dlen) {
            d = dlen;
            flags &= (uint8_t)~TH_FIN;
        }
        data += d;
        dlen -= d;
        seq += d;
        if (dlen == 0 && !(flags & TH_FIN)) seq = t->rcv_nxt;
    }
    if (SEQ_GT(seq + dlen, t->rcv_nxt + rwnd)) {
        dlen = t->rcv_nxt + rwnd - seq;
        flags &= (uint8_t)~TH_FIN;
    }

    /* Second: RST (RFC 5961 3.2: exact match resets, in-window gets a challenge ACK). */
    if (flags & TH_RST) {
        NSTAT(tcp_rst_received);
        if (seq != t->rcv_nxt) {
            NSTAT(tcp_challenge_acks);
            t->ack_now = 1;
            tcp_output(t);
            return;
        }
        if (t->state == TCPS_TIME_WAIT) {
            /* RFC 1337: a reset must not cut TIME-WAIT short (old duplicates could then be
             * accepted by a new incarnation of the connection). */
            return;
        }
        NSTAT(tcp_resets);
        if (t->state == TCPS_SYN_RCVD) tcp_close(t, t->listener ? 0 : ECONNREFUSED);
        else if (t->state == TCPS_CLOSING || t->state == TCPS_LAST_ACK) tcp_close(t, 0);
        else tcp_close(t, ECONNRESET);
        return;
    }
    /* Fourth: a SYN in a synchronized state (RFC 5961 4.2). */
    if (flags & TH_SYN) {
        if (t->state == TCPS_SYN_RCVD && seq == t->irs) {
            t->ack_now = 1; /* the peer lost our SYN-ACK */
            tcp_output(t);
            return;
        }
        NSTAT(tcp_challenge_acks);
        t->ack_now = 1;
        tcp_output(t);
        return;
    }
    /* Fifth: ACK. */
    if (!(flags & TH_ACK)) {
        NSTAT(tcp_drop_bad_flags);
        return;
    }
    if (t->state == TCPS_SYN_RCVD) {
        if (!(SEQ_GT(ack, t->snd_una) && SEQ_LEQ(ack, t->snd_max))) {
            NSTAT(tcp_drop_bad_ack);
            tcp_respond_rst(t->laddr, t->lport, t->faddr, t->fport, ack, 0, TH_RST);
            return;
        }
        struct sock *l = t->listener;
        if (l && l->acc_len >= l->backlog) {
            /* Accept queue full: ignore the ACK; our SYN-ACK retransmission asks again later. */
            NSTAT(tcp_drop_backlog_full);
            return;
        }
        if (tcp_alloc_buffers(t) < 0) {
            tcp_drop(t, ENOMEM);
            return;
        }
        if (t->rtt_timing && t->retries == 0) tcp_rtt_sample(t, (uint32_t)(ilwaco_ticks() - t->rtt_start));
        t->rtt_timing = 0;
        t->retries = 0;
        timer_cancel(&t->rexmt);
        t->snd_una = t->iss + 1;
        t->snd_wnd = wnd;
        t->max_sndwnd = wnd;
        t->snd_wl1 = seq;
        t->snd_wl2 = ack;
        t->state = TCPS_ESTABLISHED;
        NSTAT(tcp_established);
        if (l) {
            dequeue(t);
            enqueue(t, 2);
        }
        tcp_notify(t);
    }
    if (SEQ_GT(ack, t->snd_max)) {
        /* Acknowledges something not yet sent (RFC 9293): ACK back and drop. */
        NSTAT(tcp_drop_bad_ack);
        t->ack_now = 1;
        tcp_output(t);
        return;
    }
    int fin_acked = 0;
    if (SEQ_GT(ack, t->snd_una)) {
        uint32_t acked = ack - t->snd_una;
        if (t->fin_sent && SEQ_GT(ack, t->fin_seq)) {
            fin_acked = 1;
            acked--;
        }
        if (acked > t->snd.len) acked = t->snd.len;
        if (t->rtt_timing && SEQ_GEQ(ack, t->rtt_seq)) {
            tcp_rtt_sample(t, (uint32_t)(ilwaco_ticks() - t->rtt_start));
            t->rtt_timing = 0;
        } else if (t->have_rtt && t->retries) {
            /* Backed-off RTO returns to the estimate once new data is acknowledged. */
            tcp_rtt_sample(t, t->srtt);
        }
        ring_consume(&t->snd, acked);
        t->snd_una = ack;
        if (SEQ_LT(t->snd_nxt, t->snd_una)) t->snd_nxt = t->snd_una;
        t->retries = 0;
        t->probing = 0;
        if (t->snd_una == t->snd_max) timer_cancel(&t->rexmt);
        else tcp_arm_rexmt(t); /* RFC 6298 5.3 */
        tcp_cc_ack(t, ack, acked);
        tcp_notify(t);
    } else if (ack == t->snd_una && dlen == 0 && !(flags & TH_FIN) && wnd == t->snd_wnd && wnd != 0 &&
               t->snd_max != t->snd_una) {
        /* RFC 5681 duplicate ACK. Not with a zero window: those answer our window probes. */
        tcp_cc_dupack(t);
    } else if (ack == t->snd_una && !t->in_recovery) {
        t->dupacks = 0;
    }
    /* Window update (RFC 9293 3.10.7.4, SND.WL1/WL2 rule). */
    if (SEQ_LT(t->snd_wl1, seq) || (t->snd_wl1 == seq && SEQ_LEQ(t->snd_wl2, ack))) {
        if (wnd > t->snd_wnd) tcp_notify(t);
        t->snd_wnd = wnd;
        t->snd_wl1 = seq;
        t->snd_wl2 = ack;
        if (wnd > t->max_sndwnd) t->max_sndwnd = wnd;
        if (wnd > 0 && t->probing) {
            /* The window opened. A probe byte not acknowledged was dropped by the peer:
             * send it again first, with the rest. */
            t->probing = 0;
            t->snd_nxt = t->snd_una;
            timer_cancel(&t->rexmt);
        }
    }
    switch (t->state) {
    case TCPS_FIN_WAIT_1:
        if (fin_acked) {
            t->state = TCPS_FIN_WAIT_2;
            if (!t->sock) timer_arm(&t->tw, ilwaco_ticks() + TCP_FIN_WAIT_2_US);
            tcp_notify(t);
        }
        break;
    case TCPS_CLOSING:
        if (fin_acked) {
            tcp_enter_time_wait(t);
            return;
        }
        break;
    case TCPS_LAST_ACK:
        if (fin_acked) {
            tcp_close(t, 0);
            return;
        }
        break;
    case TCPS_TIME_WAIT:
        if (flags & TH_FIN) {
            /* A retransmitted FIN: ACK it and restart the 2 MSL wait. */
            t->ack_now = 1;
            timer_arm(&t->tw, ilwaco_ticks() + 2 * TCP_MSL_US);
            tcp_output(t);
        }
        return;
    default:
        break;
    }

    /* Seventh: segment text. */
    if (dlen > 0) {
        if (t->state == TCPS_ESTABLISHED || t->state == TCPS_FIN_WAIT_1 || t->state == TCPS_FIN_WAIT_2) {
            if (!t->sock && !t->listener) {
                /* Data for a connection the application closed: nobody will read it. */
                tcp_drop(t, 0);
                return;
            }
            if (t->shut_rd || !t->rcv.buf) {
                /* SHUT_RD: acknowledge in-order data and discard it. */
                if (seq == t->rcv_nxt) t->rcv_nxt += dlen;
                t->ack_now = 1;
            } else {
                reass(t, seq, data, dlen);
            }
        } else {
            dlen = 0; /* after the peer's FIN there is no more data */
        }
    }
    /* Eighth: FIN. */
    if (flags & TH_FIN) {
        uint32_t fseq = seq + dlen;
        if (fseq == t->rcv_nxt) fin_arrived(t);
        else if (SEQ_GT(fseq, t->rcv_nxt)) {
            t->fin_pending = 1;
            t->fin_pending_seq = fseq;
            t->ack_now = 1;
        }
    }
    if (t->fin_pending && t->fin_pending_seq == t->rcv_nxt && !t->fin_rcvd) fin_arrived(t);
    if (t->state == TCPS_CLOSED) return;
    tcp_output(t);
}
#endif
