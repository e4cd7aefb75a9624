/*
 * TCP (RFC 9293) and socket internals shared by tcp_input.c, tcp_output.c, tcp_timer.c,
 * tcp_cc.c (NewReno, RFC 5681/6582), socket.c, udp.c and poll.c.
 */
#ifndef ILWACO_NET_TCP_H
#define ILWACO_NET_TCP_H
#include "net_internal.h"
#include <sys/socket.h>

enum tcp_state {
    TCPS_CLOSED,
    TCPS_LISTEN,
    TCPS_SYN_SENT,
    TCPS_SYN_RCVD,
    TCPS_ESTABLISHED,
    TCPS_FIN_WAIT_1,
    TCPS_FIN_WAIT_2,
    TCPS_CLOSE_WAIT,
    TCPS_CLOSING,
    TCPS_LAST_ACK,
    TCPS_TIME_WAIT,
};

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10
#define TH_URG 0x20

/* Sequence-space comparisons (RFC 9293 3.4: arithmetic modulo 2^32). */
#define SEQ_LT(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) <= 0)
#define SEQ_GT(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) > 0)
#define SEQ_GEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) >= 0)

#define TCP_HDR 20
#define TCP_DEFAULT_MSS 536      /* RFC 9293 3.7.1: when the peer sends no MSS option */
#define TCP_BUF_DEFAULT 65536u
#define TCP_BUF_MIN 2048u
#define TCP_BUF_MAX (1024u * 1024u)
#define TCP_MAX_WINDOW 65535u    /* no window scaling offered */
#define TCP_OOO_MAX 16           /* out-of-order ranges kept per connection */
#define TCP_RTO_INITIAL 1000000u /* RFC 6298 2.1: 1 s */
#define TCP_RTO_MIN 1000000u     /* RFC 6298 2.4: 1 s. Guests share a host CPU, so a busy host
                                  * delays ACKs by far more than a LAN would: a smaller floor
                                  * (200 ms) caused spurious timeouts under load. */
#define TCP_RTO_MAX 60000000u    /* RFC 6298 2.5 */
#define TCP_DELACK_US 40000u     /* RFC 9293 3.8.6.3 / RFC 1122 4.2.3.2: well under 500 ms */
#define TCP_MSL_US 15000000ull   /* TIME-WAIT lasts 2 MSL = 30 s */
#define TCP_FIN_WAIT_2_US 60000000ull /* orphaned connections waiting for the peer's FIN */
#define TCP_SYN_RETRIES 6        /* SYN retransmissions before ETIMEDOUT (1+2+...+64 s) */
#define TCP_SYNACK_RETRIES 3
#define TCP_DATA_RETRIES 10
#define TCP_MAX_TIME_WAIT 64     /* beyond this the oldest TIME-WAIT connection is recycled */
#define TCP_MAX_HALF_OPEN 256    /* all listeners together */

struct sock;

struct tcb {
    struct tcb *hnext;      /* demux hash chain */
    struct tcb *qnext;      /* listener's half-open list or accept queue */
    struct tcb *all_next, *all_prev;
    struct sock *sock;      /* owning socket, NULL when orphaned or not yet accepted */
    struct sock *listener;  /* passive opens until accept() */
    int state;
    int hashed;
    uint32_t laddr, faddr;  /* network order */
    uint16_t lport, fport;  /* network order */

    /* Send sequence space (RFC 9293 3.3.1). snd_max: highest sequence sent + 1 (snd_nxt goes
     * back to snd_una after a timeout). The send ring holds bytes from snd_una on. */
    uint32_t iss, snd_una, snd_nxt, snd_max, snd_wnd, snd_wl1, snd_wl2, max_sndwnd;
    /* Receive sequence space; rcv_adv is the right edge we last advertised. */
    uint32_t irs, rcv_nxt, rcv_adv;
    uint32_t mss;           /* send MSS (bytes) */
    uint32_t snd_sml;       /* end of the last small segment sent (Minshall's Nagle) */
    struct ring snd, rcv;
    uint32_t sndbuf_size, rcvbuf_size;
    /* Out-of-order data is stored in the receive ring at its final position; these are the
     * ranges (sequence numbers) held beyond rcv_nxt, sorted, disjoint. */
    struct { uint32_t start, end; } ooo[TCP_OOO_MAX];
    int ooo_n;

    int fin_queued;         /* the application shut down writing: FIN after the data */
    int fin_sent;           /* FIN has sequence number fin_seq */
    uint32_t fin_seq;
    int fin_rcvd;           /* peer's FIN processed: no more data */
    int fin_pending;        /* peer's FIN arrived out of order at fin_pending_seq */
    uint32_t fin_pending_seq;
    int queued;             /* on the listener's half-open list (1) or accept queue (2) */
    int nodelay, ack_now, delack_segs;
    int shut_rd;

    /* RTT measurement (one segment at a time, Karn's rule) and RTO (RFC 6298), µs. */
    int rtt_timing;
    uint32_t rtt_seq;
    uint64_t rtt_start;
    uint32_t srtt, rttvar, rto;
    int have_rtt;
    int retries;            /* consecutive timeouts */
    int probing;            /* zero-window probing (persist) */

    /* Congestion control (tcp_cc.c), bytes. */
    uint32_t cwnd, ssthresh, recover, ca_acc;
    int dupacks, in_recovery;

    struct net_timer rexmt, delack, tw;
    int error;              /* pending errno for the socket */
    uint64_t tw_since;
};

struct dgram {
    struct dgram *next;
    uint32_t src;
    uint16_t sport;
    uint32_t len;
    uint8_t data[];
};

struct sock {
    int used, fd, type;
    uint32_t gen; /* bumped on close, so sleepers notice their socket went away */
    int nonblock, reuseaddr, nodelay;
    uint32_t sndbuf, rcvbuf;
    uint64_t rcvtimeo, sndtimeo; /* µs, 0 = forever */
    uint32_t laddr, faddr;       /* network order */
    uint16_t lport, fport;       /* network order; lport 0 = unbound */
    int connected;               /* UDP default peer / TCP connect issued */
    int listening, backlog;
    int error;                   /* SO_ERROR */
    int shut_rd, shut_wr;
    struct tcb *tcb;
    /* listener */
    struct tcb *acc_head, *acc_tail, *half_head, *half_tail;
    int acc_len, half_len;
    /* UDP receive queue */
    struct dgram *dq_head, *dq_tail;
    uint32_t dq_bytes;
    int dq_count;
    struct ilwaco_waitq wq;
};

/* socket.c */
struct sock *sock_find_listener(uint32_t laddr, uint16_t lport);
struct sock *sock_find_udp(uint32_t laddr, uint16_t lport, uint32_t faddr, uint16_t fport);
/** Wake whoever waits on s (and poll()). */
void sock_wakeup(struct sock *s);
uint16_t sock_ephemeral_port(int type);
/**
 * Sleep on s until woken or `deadline`; 0 when woken, -1 with errno EAGAIN (deadline) or
 * EBADF (the socket was closed meanwhile: its generation changed from `gen`).
 */
int sock_wait(struct sock *s, uint32_t gen, uint64_t deadline);
/** Deadline for a socket timeout in µs (0 = none). */
uint64_t sock_deadline(uint64_t timeout_us);

/* udp.c */
ssize_t udp_send(struct sock *s, const void *buf, size_t len, int flags, uint32_t dst, uint16_t dport);
ssize_t udp_recv(struct sock *s, void *buf, size_t len, int flags, struct sockaddr_in *from);
void udp_flush_queue(struct sock *s);

/* tcp_input.c */
struct tcb *tcp_lookup(uint32_t laddr, uint16_t lport, uint32_t faddr, uint16_t fport);
void tcp_hash_insert(struct tcb *t);
int tcp_connections(void);
int tcp_port_in_use(uint16_t lport);

/* tcp_output.c */
void tcp_output(struct tcb *t);
/** Send one segment with data from the send ring at `seq` (len bytes) and the given flags. */
void tcp_send_segment(struct tcb *t, uint32_t seq, uint32_t len, uint8_t flags);
/** RST or RST|ACK answering a segment that has no connection (RFC 9293 3.10.7.1). */
void tcp_respond_rst(uint32_t laddr, uint16_t lport, uint32_t faddr, uint16_t fport, uint32_t seq, uint32_t ack, uint8_t flags);
/** Receive window to advertise (bytes, <= TCP_MAX_WINDOW), with receiver SWS avoidance. */
uint32_t tcp_rcv_window(struct tcb *t);
/** After the application reads: send a window update when the window opened enough. */
void tcp_window_update(struct tcb *t);

/* tcp_timer.c */
void tcp_timers_init(struct tcb *t);
/** Delete t now if its (deferrable) TIME-WAIT / orphaned FIN-WAIT-2 time is over; 1 if it was. */
int tcp_reap_expired(struct tcb *t);
void tcp_arm_rexmt(struct tcb *t);
void tcp_rtt_sample(struct tcb *t, uint32_t rtt_us);
void tcp_enter_time_wait(struct tcb *t);

/* tcp_cc.c (NewReno) */
void tcp_cc_init(struct tcb *t);
/** New data acknowledged (`acked` bytes, ack = new snd_una); may retransmit (partial ACK). */
void tcp_cc_ack(struct tcb *t, uint32_t ack, uint32_t acked);
/** A duplicate ACK (RFC 5681 definition); may fast-retransmit. */
void tcp_cc_dupack(struct tcb *t);
/** Retransmission timeout: shrink to the loss window (RFC 5681 3.1 eq. 4). */
void tcp_cc_timeout(struct tcb *t);
uint32_t tcp_flight_size(const struct tcb *t);

/* connection life (tcp_input.c) */
struct tcb *tcp_new(void);
/** Enter CLOSED: timers off, unhashed, buffers freed; the socket sees `err` (0: none). Frees
 * the TCB when no socket owns it. */
void tcp_close(struct tcb *t, int err);
/** Send RST and close (RFC 9293 3.10.5 ABORT). */
void tcp_drop(struct tcb *t, int err);
/** Wake the socket (or listener) waiting on t. */
void tcp_notify(struct tcb *t);
/** Allocate the send and receive rings (at ESTABLISHED for passive opens). */
int tcp_alloc_buffers(struct tcb *t);
/** Pop the first established connection from a listener's accept queue (or NULL). */
struct tcb *tcp_accept_pop(struct sock *l);
#endif
