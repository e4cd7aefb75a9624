/*
 * Client-side tests of Ilwaco's TCP/IP stack against an echo server (examples/echo).
 * Usage: net-tests <server-ip> [port] [suite]
 *   suite: all (default) | bulk (one 200 KB round trip) | bench (six of them, for throughput)
 *          | quick (ping + small echo)
 * Prints "PASS name ..." / "FAIL name ..." per test, "xfer ..." lines for measured transfers
 * (bytes, FNV-1a of the stream, time, throughput), then "net-tests: N passed, M failed"
 * and the stack's counters. Exit status: number of failures (0 = all passed).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ilwaco/ilwaco.h>
#include <ilwaco/net.h>
#include <ilwaco/thread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int passed, failed;
static struct sockaddr_in server;

static void result(const char *name, int ok, const char *fmt, ...) {
    char detail[200] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
    }
    printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", name, detail[0] ? " " : "", detail);
    fflush(stdout);
    if (ok) passed++;
    else failed++;
}

static int connect_to(uint16_t port_be) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = server;
    a.sin_port = port_be;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* The test stream: byte i of stream `seed`. */
static inline uint8_t pattern(uint32_t seed, uint32_t i) { return (uint8_t)(((i ^ seed) * 0x9e3779b1u) >> 24); }

struct sender {
    int fd;
    uint32_t n, seed;
    int err;
    int half_close;
};

static void *send_all(void *arg) {
    struct sender *s = arg;
    static uint8_t bufs[8][8192];
    static int next_buf;
    uint8_t *buf = bufs[next_buf++ & 7];
    uint32_t off = 0, rnd = s->seed | 1;
    while (off < s->n) {
        rnd ^= rnd << 13;
        rnd ^= rnd >> 17;
        rnd ^= rnd << 5;
        uint32_t chunk = 1 + rnd % 8192; /* varied write sizes exercise Nagle and segmentation */
        if (chunk > s->n - off) chunk = s->n - off;
        for (uint32_t i = 0; i < chunk; i++) buf[i] = pattern(s->seed, off + i);
        ssize_t w = send(s->fd, buf, chunk, 0);
        if (w <= 0) {
            s->err = errno;
            return NULL;
        }
        off += (uint32_t)w;
    }
    if (s->half_close) shutdown(s->fd, SHUT_WR);
    return NULL;
}

/* Send n bytes through the echo server and check every byte that comes back. Returns 0 on
 * success; *fnv is the FNV-1a hash of the stream. */
static int round_trip(uint32_t n, uint32_t seed, uint32_t *fnv_out, uint64_t *us_out, char *why, size_t whylen) {
    uint64_t t0 = ilwaco_ticks();
    int fd = connect_to(server.sin_port);
    if (fd < 0) {
        snprintf(why, whylen, "connect errno %d", errno);
        return -1;
    }
    struct sender s = {fd, n, seed, 0, 1};
    thread_t *th = thread_create(send_all, &s, 16384);
    static uint8_t rbufs[8][4096];
    static int next_rbuf;
    uint8_t *buf = rbufs[next_rbuf++ & 7];
    uint32_t got = 0, fnv = 2166136261u;
    int rc = 0;
    for (;;) {
        ssize_t r = recv(fd, buf, 4096, 0);
        if (r < 0) {
            snprintf(why, whylen, "recv errno %d after %u bytes", errno, (unsigned)got);
            rc = -1;
            break;
        }
        if (r == 0) break;
        for (ssize_t i = 0; i < r; i++) {
            if (got + (uint32_t)i >= n || buf[i] != pattern(seed, got + (uint32_t)i)) {
                snprintf(why, whylen, "wrong byte at offset %u", (unsigned)(got + (uint32_t)i));
                rc = -1;
                break;
            }
            fnv = (fnv ^ buf[i]) * 16777619u;
        }
        if (rc) break;
        got += (uint32_t)r;
    }
    thread_join(th);
    close(fd);
    if (rc == 0 && s.err) {
        snprintf(why, whylen, "send errno %d", s.err);
        rc = -1;
    }
    if (rc == 0 && got != n) {
        snprintf(why, whylen, "got %u of %u bytes", (unsigned)got, (unsigned)n);
        rc = -1;
    }
    uint64_t us = ilwaco_ticks() - t0;
    if (fnv_out) *fnv_out = fnv;
    if (us_out) *us_out = us;
    return rc;
}

static void test_transfer(uint32_t n, uint32_t seed) {
    char why[120] = "", name[40];
    uint32_t fnv;
    uint64_t us;
    snprintf(name, sizeof name, "echo-%u", (unsigned)n);
    int rc = round_trip(n, seed, &fnv, &us, why, sizeof why);
    if (rc == 0) {
        /* Both directions carry n bytes. */
        uint64_t kbps = us ? (uint64_t)n * 2 * 1000000u / 1024u / us : 0;
        printf("xfer %u bytes fnv %08x us %u KB/s %u\n", (unsigned)n, (unsigned)fnv, (unsigned)us, (unsigned)kbps);
    }
    result(name, rc == 0, "%s", why);
}

/* The reader stalls while the echo server keeps sending: windows close (zero-window probes),
 * then the reader resumes and everything must arrive intact. */
static void test_stall_resume(uint32_t n) {
    char why[120] = "";
    int fd = connect_to(server.sin_port);
    if (fd < 0) {
        result("stall-resume", 0, "connect errno %d", errno);
        return;
    }
    struct sender s = {fd, n, 4242, 0, 1};
    thread_t *th = thread_create(send_all, &s, 16384);
    /* Stall until the server's window probe arrives (our stack drops its byte and counts it),
     * at most 10 s. */
    struct ilwaco_net_stats st;
    ilwaco_net_get_stats(&st);
    uint32_t before = st.tcp_drop_out_of_window;
    uint64_t t0 = ilwaco_ticks();
    while (ilwaco_ticks() - t0 < 10000000u) {
        thread_sleep_us(50000);
        ilwaco_net_get_stats(&st);
        if (st.tcp_drop_out_of_window != before) break;
    }
    int probed = st.tcp_drop_out_of_window != before;
    unsigned stalled_ms = (unsigned)((ilwaco_ticks() - t0) / 1000);
    static uint8_t buf[4096];
    uint32_t got = 0;
    int ok = 1;
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0) {
            if (r < 0) {
                snprintf(why, sizeof why, "recv errno %d", errno);
                ok = 0;
            }
            break;
        }
        for (ssize_t i = 0; i < r && ok; i++)
            if (buf[i] != pattern(4242, got + (uint32_t)i)) {
                snprintf(why, sizeof why, "wrong byte at %u", (unsigned)(got + (uint32_t)i));
                ok = 0;
            }
        got += (uint32_t)r;
        if (!ok) break;
    }
    thread_join(th);
    close(fd);
    if (ok && (got != n || s.err)) {
        snprintf(why, sizeof why, "got %u of %u, send errno %d", (unsigned)got, (unsigned)n, s.err);
        ok = 0;
    }
    if (ok && !probed) {
        snprintf(why, sizeof why, "no window probe within %u ms", stalled_ms);
        ok = 0;
    }
    if (ok) snprintf(why, sizeof why, "window probe after %u ms", stalled_ms);
    result("stall-resume", ok, "%s", why);
}

static void test_ping(void) {
    uint64_t rtt = 0;
    int rc = ilwaco_ping(server.sin_addr.s_addr, 56, 2000000, &rtt);
    result("ping", rc == 0, rc == 0 ? "rtt %u us" : "errno %d", rc == 0 ? (unsigned)rtt : (unsigned)errno);
}

static void test_sequential(int count) {
    char why[120] = "";
    int ok = 1, first_fd = -1, last_fd = -1;
    for (int i = 0; i < count && ok; i++) {
        int fd = connect_to(server.sin_port);
        if (fd < 0) {
            snprintf(why, sizeof why, "connect %d errno %d", i, errno);
            ok = 0;
            break;
        }
        if (first_fd < 0) first_fd = fd;
        last_fd = fd;
        char msg[64], back[64];
        int len = snprintf(msg, sizeof msg, "connection %d says hello", i);
        if (send(fd, msg, (size_t)len, 0) != len || recv(fd, back, (size_t)len, MSG_WAITALL) != len) {
            snprintf(why, sizeof why, "io %d errno %d", i, errno);
            ok = 0;
        } else if (memcmp(msg, back, (size_t)len) != 0) {
            snprintf(why, sizeof why, "wrong echo on %d", i);
            ok = 0;
        }
        close(fd);
    }
    if (ok && first_fd != last_fd) {
        snprintf(why, sizeof why, "descriptor leak: %d then %d", first_fd, last_fd);
        ok = 0;
    }
    char name[40];
    snprintf(name, sizeof name, "sequential-%d", count);
    result(name, ok, "%s", why);
}

/* recv(MSG_WAITALL) a 64-byte message sent in one piece: the short-message path above. */

struct conc {
    uint32_t n, seed;
    int rc;
    char why[120];
};
static void *conc_worker(void *arg) {
    struct conc *c = arg;
    c->rc = round_trip(c->n, c->seed, NULL, NULL, c->why, sizeof c->why);
    return NULL;
}

static void test_concurrent(int k, uint32_t n) {
    struct conc cs[8];
    thread_t *th[8];
    if (k > 8) k = 8;
    uint64_t t0 = ilwaco_ticks();
    for (int i = 0; i < k; i++) {
        cs[i].n = n;
        cs[i].seed = 0x1000u + (uint32_t)i;
        cs[i].rc = -1;
        cs[i].why[0] = 0;
        th[i] = thread_create(conc_worker, &cs[i], 32768);
    }
    int bad = 0;
    const char *why = "";
    for (int i = 0; i < k; i++) {
        thread_join(th[i]);
        if (cs[i].rc != 0) {
            bad++;
            why = cs[i].why;
        }
    }
    uint64_t us = ilwaco_ticks() - t0;
    char name[40];
    snprintf(name, sizeof name, "concurrent-%dx%u", k, (unsigned)n);
    result(name, bad == 0, bad ? "%d failed: %s" : "%u us", bad ? bad : (int)us, why);
}

static void test_half_close(void) {
    char why[120] = "";
    int ok = 0;
    int fd = connect_to(server.sin_port);
    if (fd < 0) {
        result("half-close", 0, "connect errno %d", errno);
        return;
    }
    char out[1000], in[1200];
    for (int i = 0; i < 1000; i++) out[i] = (char)('a' + i % 26);
    send(fd, out, sizeof out, 0);
    shutdown(fd, SHUT_WR);
    ssize_t w = send(fd, "x", 1, 0);
    int e_send = errno;
    size_t got = 0;
    for (int guard = 0; guard < 1000; guard++) {
        ssize_t r = recv(fd, in + got, sizeof in - got, 0);
        if (r <= 0) {
            if (r < 0) snprintf(why, sizeof why, "recv errno %d", errno);
            break;
        }
        got += (size_t)r;
    }
    if (w != -1 || e_send != EPIPE) snprintf(why, sizeof why, "send after SHUT_WR gave %d errno %d", (int)w, e_send);
    else if (got != 1000 || memcmp(in, out, 1000) != 0) snprintf(why, sizeof why, "%s got %u bytes", why, (unsigned)got);
    else ok = 1;
    close(fd);
    result("half-close", ok, "%s", why);
}

static void test_refused(void) {
    int fd = connect_to(htons(9));
    int e = errno;
    if (fd >= 0) close(fd);
    result("connect-refused", fd < 0 && e == ECONNREFUSED, "errno %d", e);
}

static void test_timeout(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {0, 300000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = server;
    a.sin_addr.s_addr = inet_addr("10.73.0.250"); /* nobody there: ARP is never answered */
    uint64_t t0 = ilwaco_ticks();
    int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    uint64_t ms = (ilwaco_ticks() - t0) / 1000;
    close(fd);
    result("connect-timeout", rc < 0 && e == ETIMEDOUT && ms >= 250 && ms < 5000, "errno %d after %u ms", e, (unsigned)ms);
}

static void test_udp(void) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int ok = 1;
    char why[120] = "";
    for (int i = 0; i < 5 && ok; i++) {
        char msg[64], back[64];
        int len = snprintf(msg, sizeof msg, "udp datagram %d", i);
        if (sendto(fd, msg, (size_t)len, 0, (struct sockaddr *)&server, sizeof server) != len) {
            snprintf(why, sizeof why, "sendto errno %d", errno);
            ok = 0;
            break;
        }
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t r = recvfrom(fd, back, sizeof back, 0, (struct sockaddr *)&from, &fl);
        if (r != len || memcmp(back, msg, (size_t)len) != 0 || from.sin_addr.s_addr != server.sin_addr.s_addr ||
            from.sin_port != server.sin_port) {
            snprintf(why, sizeof why, "datagram %d: got %d errno %d", i, (int)r, errno);
            ok = 0;
        }
    }
    close(fd);
    result("udp-echo", ok, "%s", why);
}

static void test_nonblock_poll(void) {
    char why[120] = "";
    int ok = 0;
    int fd = connect_to(server.sin_port);
    if (fd < 0) {
        result("nonblock-poll", 0, "connect errno %d", errno);
        return;
    }
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
    int e = errno;
    struct pollfd p = {fd, POLLIN, 0};
    int n0 = poll(&p, 1, 50);
    send(fd, "z", 1, 0);
    p.revents = 0;
    int n1 = poll(&p, 1, 3000);
    short rev = p.revents;
    ssize_t r2 = recv(fd, &c, 1, MSG_DONTWAIT);
    if (r != -1 || e != EAGAIN) snprintf(why, sizeof why, "recv DONTWAIT gave %d errno %d", (int)r, e);
    else if (n0 != 0) snprintf(why, sizeof why, "idle poll returned %d", n0);
    else if (n1 != 1 || !(rev & POLLIN)) snprintf(why, sizeof why, "poll after echo returned %d revents %x", n1, rev);
    else if (r2 != 1 || c != 'z') snprintf(why, sizeof why, "read back %d", (int)r2);
    else ok = 1;
    close(fd);
    result("nonblock-poll", ok, "%s", why);
}

static void test_names(void) {
    int fd = connect_to(server.sin_port);
    if (fd < 0) {
        result("sockname", 0, "connect errno %d", errno);
        return;
    }
    struct sockaddr_in me, peer;
    socklen_t ml = sizeof me, pl = sizeof peer;
    struct ilwaco_net_config cfg;
    ilwaco_net_config(&cfg);
    int a = getsockname(fd, (struct sockaddr *)&me, &ml);
    int b = getpeername(fd, (struct sockaddr *)&peer, &pl);
    int mss = 0;
    socklen_t ol = sizeof mss;
    getsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &ol);
    close(fd);
    int ok = a == 0 && b == 0 && me.sin_addr.s_addr == cfg.addr && ntohs(me.sin_port) >= 49152 &&
             peer.sin_addr.s_addr == server.sin_addr.s_addr && peer.sin_port == server.sin_port && mss == 1460;
    result("sockname", ok, "local port %u mss %d", ntohs(me.sin_port), mss);
}

static void test_api_errors(void) {
    char why[160] = "";
    int ok = 1;
    struct in_addr ia;
    char txt[INET_ADDRSTRLEN];
    if (inet_pton(AF_INET, "10.73.0.2", &ia) != 1 || strcmp(inet_ntop(AF_INET, &ia, txt, sizeof txt), "10.73.0.2") != 0 ||
        inet_pton(AF_INET, "10.73.0", &ia) != 0 || inet_pton(AF_INET, "256.1.1.1", &ia) != 0 ||
        inet_pton(AF_INET, "1.2.3.4x", &ia) != 0 || htons(0x1234) != 0x3412 || ntohl(htonl(0xdeadbeef)) != 0xdeadbeef) {
        snprintf(why, sizeof why, "inet conversions");
        ok = 0;
    }
    if (ok && (socket(12345, SOCK_STREAM, 0) != -1 || errno != EAFNOSUPPORT)) {
        snprintf(why, sizeof why, "socket(bad family) errno %d", errno);
        ok = 0;
    }
    if (ok && (send(999, "x", 1, 0) != -1 || errno != EBADF)) {
        snprintf(why, sizeof why, "send(bad fd) errno %d", errno);
        ok = 0;
    }
    int l1 = socket(AF_INET, SOCK_STREAM, 0), l2 = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(5000);
    if (ok && (bind(l1, (struct sockaddr *)&a, sizeof a) != 0 || listen(l1, 4) != 0)) {
        snprintf(why, sizeof why, "bind/listen 5000 errno %d", errno);
        ok = 0;
    }
    if (ok && (bind(l2, (struct sockaddr *)&a, sizeof a) != -1 || errno != EADDRINUSE)) {
        snprintf(why, sizeof why, "second bind errno %d", errno);
        ok = 0;
    }
    int fl = SOCK_NONBLOCK;
    int l3 = socket(AF_INET, SOCK_STREAM | fl, 0);
    if (ok && l3 >= 0 && (listen(l3, 1) != 0 || accept(l3, NULL, NULL) != -1 || errno != EAGAIN)) {
        snprintf(why, sizeof why, "non-blocking accept errno %d", errno);
        ok = 0;
    }
    char c;
    int d = socket(AF_INET, SOCK_STREAM, 0);
    if (ok && (recv(d, &c, 1, 0) != -1 || errno != ENOTCONN)) {
        snprintf(why, sizeof why, "recv unconnected errno %d", errno);
        ok = 0;
    }
    close(l1);
    close(l2);
    close(l3);
    close(d);
    result("api-errors", ok, "%s", why);
}

static void test_nodelay_latency(int rounds) {
    int fd = connect_to(server.sin_port);
    if (fd < 0) {
        result("nodelay-latency", 0, "connect errno %d", errno);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint64_t t0 = ilwaco_ticks();
    int ok = 1;
    for (int i = 0; i < rounds && ok; i++) {
        char m[32], b[32];
        int len = snprintf(m, sizeof m, "ping %d", i);
        if (send(fd, m, (size_t)len, 0) != len || recv(fd, b, (size_t)len, MSG_WAITALL) != len || memcmp(m, b, (size_t)len)) ok = 0;
    }
    uint64_t us = ilwaco_ticks() - t0;
    close(fd);
    result("nodelay-latency", ok, "%d round trips, %u us each", rounds, (unsigned)(us / (uint64_t)rounds));
}

int main(int argc, char **argv) {
    const char *ip = argc > 1 ? argv[1] : "10.73.0.2";
    int port = argc > 2 ? atoi(argv[2]) : 7;
    const char *suite = argc > 3 ? argv[3] : "all";
    memset(&server, 0, sizeof server);
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &server.sin_addr) != 1) {
        printf("net-tests: bad address %s\n", ip);
        return 2;
    }
    printf("net-tests: server %s:%d suite %s\n", ip, port, suite);
    uint64_t t0 = ilwaco_ticks();
    if (strcmp(suite, "bulk") == 0) {
        test_transfer(200000, 77);
    } else if (strcmp(suite, "bench") == 0) {
        /* Throughput: the first transfer warms the emulator's code cache; report the rest. */
        for (int i = 0; i < 6; i++) test_transfer(200000, 500u + (uint32_t)i);
    } else if (strcmp(suite, "quick") == 0) {
        test_ping();
        test_transfer(1000, 1);
    } else {
        test_ping();
        test_api_errors();
        static const uint32_t sizes[] = {1, 100, 1460, 1461, 3000, 65535, 65536, 100000};
        for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) test_transfer(sizes[i], i + 1);
        test_transfer(200000, 77);
        test_sequential(70);
        test_stall_resume(160000);
        test_concurrent(6, 30000);
        test_half_close();
        test_refused();
        test_udp();
        test_nonblock_poll();
        test_names();
        test_nodelay_latency(20);
        test_timeout();
    }
    printf("net-tests: %d passed, %d failed in %u ms\n", passed, failed, (unsigned)((ilwaco_ticks() - t0) / 1000));
    /* Let the last FIN/ACK exchanges finish, so the server is not left retransmitting to a
     * VM that has gone. */
    thread_sleep_us(200000);
    ilwaco_net_print_stats("client ");
    fflush(stdout);
    return failed;
}
