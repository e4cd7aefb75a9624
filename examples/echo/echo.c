/*
 * TCP and UDP echo server (RFC 862) on Ilwaco sockets: one thread per TCP connection.
 * Usage: echo [port]   (default 7)
 * Each finished connection is reported as
 *   echo: conn N peer A.B.C.D:P bytes B fnv XXXXXXXX
 * where fnv is the FNV-1a 32-bit hash of every byte received (and echoed), so a test can
 * compare both ends. A UDP datagram "STATS" makes the server print its network counters and
 * answer "ok"; any other datagram is echoed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ilwaco/net.h>
#include <ilwaco/thread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int conn_seq;

struct conn {
    int fd, id;
    struct sockaddr_in peer;
};

static void *serve(void *arg) {
    struct conn *c = arg;
    uint8_t *buf = malloc(8192);
    uint32_t fnv = 2166136261u;
    unsigned long total = 0;
    int err = 0;
    for (;;) {
        ssize_t n = recv(c->fd, buf, 8192, 0);
        if (n <= 0) {
            if (n < 0) err = errno;
            break;
        }
        for (ssize_t i = 0; i < n; i++) fnv = (fnv ^ buf[i]) * 16777619u;
        total += (unsigned long)n;
        if (send(c->fd, buf, (size_t)n, 0) != n) {
            err = errno;
            break;
        }
    }
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &c->peer.sin_addr, ip, sizeof ip);
    printf("echo: conn %d peer %s:%u bytes %lu fnv %08x%s%s\n", c->id, ip, ntohs(c->peer.sin_port), total, (unsigned)fnv,
           err ? " error " : "", err == ECONNRESET ? "ECONNRESET" : (err ? "other" : ""));
    fflush(stdout);
    close(c->fd);
    free(buf);
    free(c);
    return NULL;
}

static void *udp_echo(void *arg) {
    int port = (int)(intptr_t)arg;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        printf("echo: udp bind failed: errno %d\n", errno);
        return NULL;
    }
    char buf[1500];
    for (;;) {
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (n < 0) continue;
        if (n == 5 && memcmp(buf, "STATS", 5) == 0) {
            ilwaco_net_print_stats("echo ");
            printf("echo: stats end (connections %d, timers %d)\n", ilwaco_net_tcp_connections(), ilwaco_net_timers_armed());
            fflush(stdout);
            sendto(fd, "ok", 2, 0, (struct sockaddr *)&from, fl);
            continue;
        }
        sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 7;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0) {
        printf("echo: socket: errno %d\n", errno);
        return 1;
    }
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 32) < 0) {
        printf("echo: bind/listen: errno %d\n", errno);
        return 1;
    }
    struct ilwaco_net_config cfg;
    ilwaco_net_config(&cfg);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &cfg.addr, ip, sizeof ip);
    thread_create(udp_echo, (void *)(intptr_t)port, 16384);
    printf("echo: listening on %s:%d\n", ip, port);
    fflush(stdout);
    for (;;) {
        struct conn *c = malloc(sizeof *c);
        socklen_t len = sizeof c->peer;
        c->fd = accept(ls, (struct sockaddr *)&c->peer, &len);
        if (c->fd < 0) {
            printf("echo: accept: errno %d\n", errno);
            free(c);
            thread_sleep_us(10000);
            continue;
        }
        c->id = ++conn_seq;
        if (!thread_create(serve, c, 32768)) {
            close(c->fd);
            free(c);
        }
    }
}
