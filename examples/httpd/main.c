/*
 * httpd: a static-content HTTP/1.1 web server for Denali (paper 4.2.2), serving the documents
 * packed into its image (ilwaco/assets.h) over BSD sockets, with a pre-allocated thread pool.
 *
 * Usage: httpd [PORT [THREADS [ADDRESS]]]
 *   PORT     TCP port, 0-65535 (default 80; 0 picks a free port)
 *   THREADS  worker threads, 1-256 (default 8)
 *   ADDRESS  IPv4 address to listen on (default 0.0.0.0)
 * Prints "httpd: listening on ADDRESS:PORT ..." once ready. Exits 2 on bad arguments, 1 if
 * the socket cannot be set up.
 *
 * The same sources build natively on Linux (packages/denali-cli/bench/native) for the
 * paper's comparison against a conventional OS.
 */
#include "pool.h"
#include "request.h"
#include <arpa/inet.h>
#include <errno.h>
#include <ilwaco/assets.h>
#include <ilwaco/thread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/** Completed connections the TCP stack may hold for accept(). */
#define LISTEN_BACKLOG 32

/* Parse a decimal integer in [lo, hi] into *out; 0 on success, -1 otherwise. */
static int int_arg(const char *s, long lo, long hi, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    long port = 80, threads = 8;
    const char *address = "0.0.0.0";
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    if (argc > 4 || (argc > 1 && int_arg(argv[1], 0, 65535, &port) < 0) || (argc > 2 && int_arg(argv[2], 1, POOL_MAX_THREADS, &threads) < 0) ||
        (argc > 3 && inet_pton(AF_INET, (address = argv[3]), &sa.sin_addr) != 1)) {
        fprintf(stderr, "usage: httpd [PORT [THREADS [ADDRESS]]]\n");
        return 2;
    }
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (fd < 0) {
        fprintf(stderr, "httpd: socket: %s\n", strerror(errno));
        return 1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
#ifdef ILWACO_MAX_SOCKETS
    /*
     * In the guest, memory is fixed (denali.json "memory", paper 3.2) and every connection
     * gets its own send and receive buffers, inherited from the listening socket: keep them
     * small. Requests are at most REQ_MAX_HEADER bytes; responses stream from the image.
     * Linux sizes its buffers itself.
     */
    int rcvbuf = REQ_MAX_HEADER, sndbuf = 32 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
#endif
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        fprintf(stderr, "httpd: cannot listen on %s:%ld: %s\n", address, port, strerror(errno));
        return 1;
    }
    if (port == 0) {
        socklen_t sl = sizeof sa;
        if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0) port = ntohs(sa.sin_port);
    }
    if (pool_start((int)threads) < 0) {
        fprintf(stderr, "httpd: out of memory starting %ld threads\n", threads);
        return 1;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < ilwaco_asset_count(); i++) bytes += ilwaco_asset_at(i)->size;
    printf("httpd: listening on %s:%ld with %ld threads, serving %lu documents (%lu bytes)\n", address, port, threads,
           (unsigned long)ilwaco_asset_count(), (unsigned long)bytes);
    fflush(stdout);

    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0) {
            if (errno != EINTR && errno != ECONNABORTED) {
                /* e.g. out of sockets: back off so the workers can run and close some. */
                fprintf(stderr, "httpd: accept: %s\n", strerror(errno));
                thread_sleep_us(10000);
            }
            continue;
        }
#ifdef TCP_NODELAY
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#endif
        pool_submit(c);
    }
}
