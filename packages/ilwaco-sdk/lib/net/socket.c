/*
 * BSD sockets over Ilwaco threads (paper 3.3). A socket is a slot in a fixed table; blocking
 * calls sleep the calling thread on the socket's wait queue (thread.c) and TCP/UDP input or a
 * timer wakes it. Every call ends by flushing the NIC driver's Tx queue, so what a call
 * produced leaves in one NET_SEND.
 */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "tcp.h"
#include <errno.h>
#include <ilwaco/thread.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ilwaco_net_stats __net_stats;
struct net_if __net_if;
struct ilwaco_waitq __net_poll_waitq;
static struct sock socks[ILWACO_MAX_SOCKETS];
static int started;
static uint32_t rand_state;

/* ---- start-up ---- */

int net_start(void) {
    if (started) return 0;
    uint32_t mtu = DENALI_VREG_RO_U32(DENALI_VREG_RO_MTU);
    uint32_t addr = DENALI_VREG_RO_U32(DENALI_VREG_RO_IPV4_ADDR);
    if (mtu < 576 || addr == 0) {
        /* No interface: tell the host once (an empty NET_SEND) so it can hint at -p / --net. */
        static int told;
        if (!told) {
            struct denali_net_args a = {0, 0, 0};
            told = 1;
            denali_hypercall(DENALI_HYPERCALL_NET_SEND, &a);
        }
        errno = ENETDOWN;
        return -1;
    }
    __net_if.mtu = mtu > 1500 ? 1500 : mtu;
    net_csum_offload = (DENALI_VREG_RO_U32(DENALI_VREG_RO_NET_FEATURES) & DENALI_NET_FEATURE_CSUM) != 0;
    if (netif_init() < 0) {
        errno = ENOMEM;
        return -1;
    }
    arp_init();
    rand_state = (uint32_t)ilwaco_wallclock_us() ^ addr ^ ((uint32_t)NET_MAC[5] << 24) ^ 0x9e3779b9u;
    if (!rand_state) rand_state = 1;
    started = 1;
    __net_if.up = 1;
    netif_start();
    return 0;
}

int ilwaco_net_init(void) { return net_start(); }

int ilwaco_net_config(struct ilwaco_net_config *out) {
    if (net_start() < 0) return -1;
    memcpy(out->mac, NET_MAC, 6);
    out->addr = net_addr();
    out->netmask = net_netmask();
    out->gateway = net_gateway();
    out->mtu = __net_if.mtu;
    return 0;
}

void ilwaco_net_get_stats(struct ilwaco_net_stats *out) { *out = __net_stats; }

uint32_t net_random(void) {
    /* xorshift32 stirred with the clock: unpredictable enough for ISNs and ports against an
     * off-path guesser without a source of real entropy (RFC 6528's intent, not its letter). */
    /* The VM id keeps clones of one booted VM (same rand_state) from drawing the same numbers. */
    uint32_t x = rand_state ^ ((uint32_t)ilwaco_ticks() * 0x85ebca6bu) ^ (ilwaco_vm_id() * 0xc2b2ae35u);
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    if (!x) x = 0x2545f491u;
    rand_state = x;
    return x * 0x9e3779b1u;
}

/* ---- the socket table ---- */

static struct sock *sock_get(int fd) {
    int i = fd - ILWACO_SOCKET_FD_BASE;
    if (i < 0 || i >= ILWACO_MAX_SOCKETS || !socks[i].used) {
        errno = (fd >= 0 && fd < ILWACO_SOCKET_FD_BASE) ? ENOTSOCK : EBADF;
        return NULL;
    }
    return &socks[i];
}

int ilwaco_is_socket(int fd) {
    int i = fd - ILWACO_SOCKET_FD_BASE;
    return i >= 0 && i < ILWACO_MAX_SOCKETS && socks[i].used;
}

static struct sock *sock_alloc(void) {
    for (int i = 0; i < ILWACO_MAX_SOCKETS; i++) {
        if (!socks[i].used) {
            struct sock *s = &socks[i];
            uint32_t gen = s->gen;
            memset(s, 0, sizeof *s);
            s->gen = gen;
            s->used = 1;
            s->fd = ILWACO_SOCKET_FD_BASE + i;
            s->sndbuf = s->rcvbuf = TCP_BUF_DEFAULT;
            return s;
        }
    }
    errno = EMFILE;
    return NULL;
}

void sock_poll_wakeup(void) {
    if (__ilwaco_waitq_busy(&__net_poll_waitq)) __ilwaco_waitq_wake_all(&__net_poll_waitq);
}

/* The wait queue every event on socket `fd` wakes (poll of one socket), or NULL for a bad fd. */
struct ilwaco_waitq *sock_waitq(int fd) {
    struct sock *s = sock_get(fd);
    return s ? &s->wq : NULL;
}

void sock_wakeup(struct sock *s) {
    if (__ilwaco_waitq_busy(&s->wq)) __ilwaco_waitq_wake_all(&s->wq);
    sock_poll_wakeup();
}

uint64_t sock_deadline(uint64_t timeout_us) { return timeout_us ? ilwaco_ticks() + timeout_us : ILWACO_NO_DEADLINE; }

int sock_wait(struct sock *s, uint32_t gen, uint64_t deadline) {
    netif_flush();
    int r = __ilwaco_waitq_sleep(&s->wq, deadline);
    if (!s->used || s->gen != gen) {
        errno = EBADF;
        return -1;
    }
    if (r) {
        errno = EAGAIN;
        return -1;
    }
    return 0;
}

struct sock *sock_find_listener(uint32_t laddr, uint16_t lport) {
    for (int i = 0; i < ILWACO_MAX_SOCKETS; i++) {
        struct sock *s = &socks[i];
        if (s->used && s->listening && s->lport == lport && (s->laddr == 0 || s->laddr == laddr)) return s;
    }
    return NULL;
}

struct sock *sock_find_udp(uint32_t laddr, uint16_t lport, uint32_t faddr, uint16_t fport) {
    struct sock *best = NULL;
    for (int i = 0; i < ILWACO_MAX_SOCKETS; i++) {
        struct sock *s = &socks[i];
        if (!s->used || s->type != SOCK_DGRAM || s->lport != lport) continue;
        if (s->laddr != 0 && s->laddr != laddr) continue;
        if (s->connected) {
            if (s->faddr == faddr && s->fport == fport) return s;
            continue;
        }
        if (!best) best = s;
    }
    return best;
}

static int port_used(int type, uint16_t port, const struct sock *except) {
    for (int i = 0; i < ILWACO_MAX_SOCKETS; i++) {
        const struct sock *o = &socks[i];
        if (o != except && o->used && o->type == type && o->lport == port) return 1;
    }
    return type == SOCK_STREAM && tcp_port_in_use(port);
}

uint16_t sock_ephemeral_port(int type) {
    static uint16_t next;
    if (!next) next = (uint16_t)(49152 + net_random() % 16384);
    for (int i = 0; i < 16384; i++) {
        uint16_t p = next;
        next = next >= 65535 ? 49152 : (uint16_t)(next + 1);
        if (!port_used(type, htons(p), NULL)) return htons(p);
    }
    return 0;
}

static int fail(int e) {
    errno = e;
    return -1;
}

/*
 * A stream send/recv loop that can make no progress now: fail with EAGAIN when non-blocking,
 * else sleep until the socket changes or the deadline passes. Bytes already moved are
 * reported rather than an error. Returns 1 to stop with `done`, 0 to retry, -1 (errno set).
 */
static int await_progress(struct sock *s, int nb, size_t done, uint32_t gen, uint64_t deadline) {
    if (nb) {
        if (done) return 1;
        netif_flush();
        return fail(EAGAIN);
    }
    if (sock_wait(s, gen, deadline) < 0) return done && errno == EAGAIN ? 1 : -1;
    return 0;
}

static int get_sin(const struct sockaddr *addr, socklen_t len, struct sockaddr_in *out) {
    if (!addr || len < sizeof(struct sockaddr_in)) return fail(EINVAL);
    memcpy(out, addr, sizeof *out);
    if (out->sin_family != AF_INET) return fail(EAFNOSUPPORT);
    return 0;
}

static void put_sin(struct sockaddr *addr, socklen_t *len, uint32_t a, uint16_t port) {
    if (!addr || !len) return;
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = port;
    sin.sin_addr.s_addr = a;
    socklen_t n = *len < sizeof sin ? *len : sizeof sin;
    memcpy(addr, &sin, n);
    *len = sizeof sin;
}

/* ---- socket calls ---- */

int socket(int domain, int type, int protocol) {
    if (net_start() < 0) return -1;
    if (domain != AF_INET) return fail(EAFNOSUPPORT);
    int nb = (type & SOCK_NONBLOCK) != 0;
    type &= ~SOCK_NONBLOCK;
    if (!((type == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP)) ||
          (type == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP))))
        return fail(EPROTONOSUPPORT);
    struct sock *s = sock_alloc();
    if (!s) return -1;
    s->type = type;
    s->nonblock = nb;
    return s->fd;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    struct sock *s = sock_get(fd);
    struct sockaddr_in sin;
    if (!s || get_sin(addr, len, &sin) < 0) return -1;
    if (s->lport || s->listening) return fail(EINVAL);
    if (sin.sin_addr.s_addr != INADDR_ANY && sin.sin_addr.s_addr != net_addr()) return fail(EADDRNOTAVAIL);
    uint16_t port = sin.sin_port;
    if (port == 0) {
        port = sock_ephemeral_port(s->type);
        if (!port) return fail(EADDRINUSE);
    } else {
        for (int i = 0; i < ILWACO_MAX_SOCKETS; i++) {
            struct sock *o = &socks[i];
            if (o == s || !o->used || o->type != s->type || o->lport != port) continue;
            if (o->laddr && sin.sin_addr.s_addr && o->laddr != sin.sin_addr.s_addr) continue;
            /* SO_REUSEADDR on both lets a new socket share a port with connections, never
             * with a listener. */
            if (!(s->reuseaddr && o->reuseaddr && !o->listening)) return fail(EADDRINUSE);
        }
        /* Connections without a socket (closing, TIME-WAIT) block the port unless SO_REUSEADDR. */
        if (s->type == SOCK_STREAM && !s->reuseaddr && tcp_port_in_use(port)) return fail(EADDRINUSE);
    }
    s->laddr = sin.sin_addr.s_addr;
    s->lport = port;
    return 0;
}

int listen(int fd, int backlog) {
    struct sock *s = sock_get(fd);
    if (!s) return -1;
    if (s->type != SOCK_STREAM) return fail(EOPNOTSUPP);
    if (s->tcb) return fail(EINVAL);
    if (!s->lport) {
        s->lport = sock_ephemeral_port(SOCK_STREAM);
        if (!s->lport) return fail(EADDRINUSE);
    }
    if (!s->listening) {
        struct sock *other = sock_find_listener(s->laddr ? s->laddr : net_addr(), s->lport);
        if (other && other != s) return fail(EADDRINUSE);
    }
    if (backlog < 1) backlog = 1;
    if (backlog > SOMAXCONN) backlog = SOMAXCONN;
    s->backlog = backlog;
    s->listening = 1;
    return 0;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
    struct sock *s = sock_get(fd);
    if (!s) return -1;
    if (!s->listening) return fail(EINVAL);
    uint32_t gen = s->gen;
    uint64_t deadline = sock_deadline(s->rcvtimeo);
    for (;;) {
        if (s->acc_head) {
            struct sock *ns = sock_alloc();
            if (!ns) return -1;
            struct tcb *t = tcp_accept_pop(s);
            ns->type = SOCK_STREAM;
            ns->laddr = t->laddr;
            ns->lport = t->lport;
            ns->faddr = t->faddr;
            ns->fport = t->fport;
            ns->connected = 1;
            ns->sndbuf = t->sndbuf_size;
            ns->rcvbuf = t->rcvbuf_size;
            ns->nodelay = t->nodelay;
            ns->reuseaddr = s->reuseaddr;
            ns->tcb = t;
            t->sock = ns;
            t->listener = NULL;
            put_sin(addr, len, t->faddr, t->fport);
            netif_flush();
            return ns->fd;
        }
        if (s->nonblock) return fail(EAGAIN);
        if (sock_wait(s, gen, deadline) < 0) return -1;
        if (!s->listening) return fail(EINVAL);
    }
}

static int route_ok(uint32_t dst) {
    if (dst == 0 || dst == 0xffffffffu || dst == net_addr()) return 0;
    if ((dst & net_netmask()) == (net_addr() & net_netmask())) return 1;
    return net_gateway() != 0;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    struct sock *s = sock_get(fd);
    if (!s) return -1;
    if (s->type == SOCK_DGRAM) {
        if (addr && len >= sizeof(sa_family_t) && addr->sa_family == AF_UNSPEC) {
            s->connected = 0;
            s->faddr = 0;
            s->fport = 0;
            return 0;
        }
        struct sockaddr_in sin;
        if (get_sin(addr, len, &sin) < 0) return -1;
        if (!s->lport && !(s->lport = sock_ephemeral_port(SOCK_DGRAM))) return fail(EADDRINUSE);
        s->faddr = sin.sin_addr.s_addr;
        s->fport = sin.sin_port;
        s->connected = 1;
        return 0;
    }
    if (s->listening) return fail(EINVAL);
    struct tcb *t = s->tcb;
    if (t) {
        if (t->state == TCPS_SYN_SENT || t->state == TCPS_SYN_RCVD) return fail(EALREADY);
        if (t->state != TCPS_CLOSED) return fail(EISCONN);
        /* A failed attempt: start over with a fresh connection. */
        ring_free(&t->rcv);
        free(t);
        s->tcb = NULL;
    }
    struct sockaddr_in sin;
    if (get_sin(addr, len, &sin) < 0) return -1;
    if (sin.sin_port == 0) return fail(EINVAL);
    if (!route_ok(sin.sin_addr.s_addr)) return fail(ENETUNREACH);
    if (!s->lport && !(s->lport = sock_ephemeral_port(SOCK_STREAM))) return fail(EADDRNOTAVAIL);
    if (tcp_lookup(net_addr(), s->lport, sin.sin_addr.s_addr, sin.sin_port)) return fail(EADDRINUSE);
    t = tcp_new();
    if (!t) return fail(ENOMEM);
    t->sndbuf_size = s->sndbuf;
    t->rcvbuf_size = s->rcvbuf;
    if (tcp_alloc_buffers(t) < 0) {
        free(t);
        return fail(ENOMEM);
    }
    t->laddr = net_addr();
    t->lport = s->lport;
    t->faddr = sin.sin_addr.s_addr;
    t->fport = sin.sin_port;
    t->nodelay = s->nodelay;
    t->iss = net_random();
    t->snd_una = t->snd_nxt = t->snd_max = t->snd_sml = t->iss;
    t->mss = __net_if.mtu - IP_HDR - TCP_HDR;
    t->state = TCPS_SYN_SENT;
    t->sock = s;
    s->tcb = t;
    s->faddr = t->faddr;
    s->fport = t->fport;
    s->connected = 1;
    tcp_hash_insert(t);
    NSTAT(tcp_active_opens);
    tcp_output(t);
    netif_flush();
    if (s->nonblock) return fail(EINPROGRESS);
    uint32_t gen = s->gen;
    uint64_t deadline = sock_deadline(s->sndtimeo);
    while (t->state == TCPS_SYN_SENT || t->state == TCPS_SYN_RCVD) {
        if (sock_wait(s, gen, deadline) < 0) {
            if (errno == EAGAIN) errno = ETIMEDOUT;
            return -1;
        }
    }
    if (t->state == TCPS_CLOSED) return fail(t->error ? t->error : ECONNREFUSED);
    return 0;
}

static ssize_t tcp_send_data(struct sock *s, const uint8_t *buf, size_t len, int flags) {
    struct tcb *t = s->tcb;
    if (s->shut_wr) return fail(EPIPE);
    if (!t) return fail(ENOTCONN);
    int nb = s->nonblock || (flags & MSG_DONTWAIT);
    uint32_t gen = s->gen;
    uint64_t deadline = sock_deadline(s->sndtimeo);
    size_t done = 0;
    for (;;) {
        int st = t->state;
        if (t->error && st == TCPS_CLOSED) {
            if (done) break;
            return fail(t->error);
        }
        if (st == TCPS_ESTABLISHED || st == TCPS_CLOSE_WAIT) {
            uint32_t n = ring_write(&t->snd, buf + done, (uint32_t)(len - done > 0x7fffffff ? 0x7fffffff : len - done));
            done += n;
            if (n) tcp_output(t);
            if (done == len) break;
        } else if (st != TCPS_SYN_SENT && st != TCPS_SYN_RCVD) {
            if (done) break;
            return fail(EPIPE);
        }
        int w = await_progress(s, nb, done, gen, deadline);
        if (w > 0) break;
        if (w < 0) return -1;
    }
    netif_flush();
    return (ssize_t)done;
}

static ssize_t tcp_recv_data(struct sock *s, uint8_t *buf, size_t len, int flags) {
    struct tcb *t = s->tcb;
    if (!t) return fail(ENOTCONN);
    int nb = s->nonblock || (flags & MSG_DONTWAIT);
    uint32_t gen = s->gen;
    uint64_t deadline = sock_deadline(s->rcvtimeo);
    size_t done = 0;
    while (done < len) {
        if (t->rcv.len > 0 && !s->shut_rd) {
            uint32_t n = t->rcv.len;
            if (n > len - done) n = (uint32_t)(len - done);
            ring_peek(&t->rcv, 0, buf + done, n);
            done += n;
            if (flags & MSG_PEEK) break;
            ring_consume(&t->rcv, n);
            tcp_window_update(t);
            if (!(flags & MSG_WAITALL)) break;
            continue;
        }
        if (s->shut_rd || t->fin_rcvd) break;
        if (t->state == TCPS_CLOSED) {
            if (done || !t->error) break;
            return fail(t->error);
        }
        int w = await_progress(s, nb, done, gen, deadline);
        if (w > 0) break;
        if (w < 0) return -1;
    }
    netif_flush();
    return (ssize_t)done;
}

ssize_t send(int fd, const void *buf, size_t len, int flags) { return sendto(fd, buf, len, flags, NULL, 0); }
ssize_t recv(int fd, void *buf, size_t len, int flags) { return recvfrom(fd, buf, len, flags, NULL, NULL); }

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr, socklen_t alen) {
    struct sock *s = sock_get(fd);
    if (!s) return -1;
    if (s->type == SOCK_STREAM) return tcp_send_data(s, buf, len, flags);
    if (s->shut_wr) return fail(EPIPE);
    uint32_t dst = s->faddr;
    uint16_t dport = s->fport;
    if (addr) {
        struct sockaddr_in sin;
        if (get_sin(addr, alen, &sin) < 0) return -1;
        dst = sin.sin_addr.s_addr;
        dport = sin.sin_port;
    } else if (!s->connected) {
        return fail(EDESTADDRREQ);
    }
    return udp_send(s, buf, len, flags, dst, dport);
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr, socklen_t *alen) {
    struct sock *s = sock_get(fd);
    if (!s) return -1;
    if (s->type == SOCK_STREAM) {
        ssize_t n = tcp_recv_data(s, buf, len, flags);
        if (n >= 0 && s->tcb) put_sin(addr, alen, s->tcb->faddr, s->tcb->fport);
        return n;
    }
    struct sockaddr_in from;
    ssize_t n = udp_recv(s, buf, len, flags, &from);
    if (n >= 0) put_sin(addr, alen, from.sin_addr.s_addr, from.sin_port);
    return n;
}

static void tcp_shutdown_wr(struct tcb *t) {
    if (t->fin_queued) return;
    switch (t->state) {
    case TCPS_SYN_SENT:
        tcp_close(t, 0);
        return;
    case TCPS_SYN_RCVD:
    case TCPS_ESTABLISHED:
        t->state = TCPS_FIN_WAIT_1;
        break;
    case TCPS_CLOSE_WAIT:
        t->state = TCPS_LAST_ACK;
        break;
    default:
        return;
    }
    t->fin_queued = 1;
    tcp_output(t);
}

int shutdown(int fd, int how) {
    struct sock *s = sock_get(fd);
    if (!s) return -1;
    if (how < SHUT_RD || how > SHUT_RDWR) return fail(EINVAL);
    struct tcb *t = s->tcb;
    if (s->type == SOCK_STREAM && (!t || t->state == TCPS_SYN_SENT)) return fail(ENOTCONN);
    if (how != SHUT_WR) {
        s->shut_rd = 1;
        if (t) {
            t->shut_rd = 1;
            ring_consume(&t->rcv, t->rcv.len);
            tcp_window_update(t);
        }
    }
    if (how != SHUT_RD && !s->shut_wr) {
        s->shut_wr = 1;
        if (t) tcp_shutdown_wr(t);
    }
    sock_wakeup(s);
    netif_flush();
    return 0;
}

int ilwaco_socket_close(int fd) {
    struct sock *s = sock_get(fd);
    if (!s) return -1;
    if (s->type == SOCK_STREAM) {
        if (s->listening) {
            s->listening = 0;
            while (s->half_head) tcp_close(s->half_head, 0);
            struct tcb *t;
            while ((t = tcp_accept_pop(s))) {
                t->listener = NULL;
                tcp_drop(t, 0);
            }
        }
        struct tcb *t = s->tcb;
        if (t) {
            s->tcb = NULL;
            t->sock = NULL;
            switch (t->state) {
            case TCPS_CLOSED:
                ring_free(&t->rcv);
                free(t);
                break;
            case TCPS_SYN_SENT:
                tcp_close(t, 0);
                break;
            case TCPS_TIME_WAIT:
                ring_free(&t->rcv);
                break;
            default:
                if (t->rcv.len > 0) {
                    /* Unread data would be lost silently: tell the peer (RFC 9293 3.10.4 / RFC 2525 2.17). */
                    tcp_drop(t, 0);
                    break;
                }
                ring_free(&t->rcv);
                tcp_shutdown_wr(t);
                if (t->state == TCPS_FIN_WAIT_2) timer_arm(&t->tw, ilwaco_ticks() + TCP_FIN_WAIT_2_US);
                break;
            }
        }
    } else {
        udp_flush_queue(s);
    }
    __ilwaco_waitq_wake_all(&s->wq);
    sock_poll_wakeup();
    s->used = 0;
    s->gen++;
    s->lport = 0;
    s->listening = 0;
    netif_flush();
    return 0;
}

/* ---- options and names ---- */

static uint32_t clamp_buf(int v) {
    uint32_t u = v < 0 ? 0 : (uint32_t)v;
    if (u < TCP_BUF_MIN) u = TCP_BUF_MIN;
    if (u > TCP_BUF_MAX) u = TCP_BUF_MAX;
    return u;
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len) {
    struct sock *s = sock_get(fd);
    if (!s) return -1;
    if (!val) return fail(EFAULT);
    if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
        if (len < sizeof(struct timeval)) return fail(EINVAL);
        struct timeval tv;
        memcpy(&tv, val, sizeof tv);
        if (tv.tv_sec < 0 || tv.tv_usec < 0) return fail(EINVAL);
        uint64_t us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
        if (name == SO_RCVTIMEO) s->rcvtimeo = us;
        else s->sndtimeo = us;
        return 0;
    }
    if (len < sizeof(int)) return fail(EINVAL);
    int v;
    memcpy(&v, val, sizeof v);
    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_REUSEADDR:
            s->reuseaddr = v != 0;
            return 0;
        case SO_RCVBUF:
            s->rcvbuf = clamp_buf(v);
            return 0;
        case SO_SNDBUF:
            s->sndbuf = clamp_buf(v);
            return 0;
        }
    } else if (level == IPPROTO_TCP && s->type == SOCK_STREAM) {
        if (name == TCP_NODELAY) {
            s->nodelay = v != 0;
            if (s->tcb) {
                s->tcb->nodelay = s->nodelay;
                tcp_output(s->tcb);
                netif_flush();
            }
            return 0;
        }
    }
    return fail(ENOPROTOOPT);
}

int getsockopt(int fd, int level, int name, void *val, socklen_t *len) {
    struct sock *s = sock_get(fd);
    if (!s) return -1;
    if (!val || !len) return fail(EFAULT);
    if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
        if (*len < sizeof(struct timeval)) return fail(EINVAL);
        uint64_t us = name == SO_RCVTIMEO ? s->rcvtimeo : s->sndtimeo;
        struct timeval tv = {(time_t)(us / 1000000u), (long)(us % 1000000u)};
        memcpy(val, &tv, sizeof tv);
        *len = sizeof tv;
        return 0;
    }
    if (*len < sizeof(int)) return fail(EINVAL);
    int v;
    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_REUSEADDR: v = s->reuseaddr; break;
        case SO_RCVBUF: v = (int)s->rcvbuf; break;
        case SO_SNDBUF: v = (int)s->sndbuf; break;
        case SO_TYPE: v = s->type; break;
        case SO_ERROR:
            v = s->error;
            s->error = 0;
            if (!v && s->tcb && s->tcb->state == TCPS_CLOSED) v = s->tcb->error;
            break;
        default: return fail(ENOPROTOOPT);
        }
    } else if (level == IPPROTO_TCP && s->type == SOCK_STREAM) {
        if (name == TCP_NODELAY) v = s->nodelay;
        else if (name == TCP_MAXSEG) v = s->tcb ? (int)s->tcb->mss : (int)(__net_if.mtu - IP_HDR - TCP_HDR);
        else return fail(ENOPROTOOPT);
    } else {
        return fail(ENOPROTOOPT);
    }
    memcpy(val, &v, sizeof v);
    *len = sizeof v;
    return 0;
}

int getsockname(int fd, struct sockaddr *addr, socklen_t *len) {
    struct sock *s = sock_get(fd);
    if (!s) return -1;
    if (!addr || !len) return fail(EFAULT);
    uint32_t a = s->laddr;
    if (!a && (s->tcb || s->connected)) a = net_addr();
    put_sin(addr, len, a, s->lport);
    return 0;
}

int getpeername(int fd, struct sockaddr *addr, socklen_t *len) {
    struct sock *s = sock_get(fd);
    if (!s) return -1;
    if (!addr || !len) return fail(EFAULT);
    if (s->type == SOCK_STREAM) {
        struct tcb *t = s->tcb;
        if (!t || t->state < TCPS_ESTABLISHED) return fail(ENOTCONN);
    } else if (!s->connected) {
        return fail(ENOTCONN);
    }
    put_sin(addr, len, s->faddr, s->fport);
    return 0;
}

/* ---- poll support ---- */

/* Readiness of one socket as poll() revents bits, computed from its current state. */
int sock_revents(int fd, int events) {
    struct sock *s = sock_get(fd);
    if (!s) return POLLNVAL;
    int r = 0;
    if (s->type == SOCK_DGRAM) {
        if (s->dq_count) r |= POLLIN;
        r |= POLLOUT;
        return r & (events | POLLERR | POLLHUP);
    }
    if (s->listening) return (s->acc_head ? POLLIN : 0) & events;
    struct tcb *t = s->tcb;
    if (!t) return 0; /* neither connected nor listening: nothing can happen */
    if (t->rcv.len > 0 || t->fin_rcvd || s->shut_rd) r |= POLLIN;
    if ((t->state == TCPS_ESTABLISHED || t->state == TCPS_CLOSE_WAIT) && !s->shut_wr && ring_space(&t->snd) > 0) r |= POLLOUT;
    if (t->state == TCPS_CLOSED) {
        r |= POLLIN | POLLHUP;
        if (t->error) r |= POLLERR | POLLOUT;
    }
    if (t->fin_rcvd && s->shut_wr) r |= POLLHUP;
    return r & (events | POLLERR | POLLHUP);
}
#endif
