/*
 * One connection (conn.h): read a request head into a bounded buffer, answer it from the
 * assets (GET/HEAD), skip any request body, repeat while the connection is kept alive.
 */
#include "conn.h"
#include "mime.h"
#include <errno.h>
#include <ilwaco/assets.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

/* Send all of buf[0..n). Returns 0, or -1 when the connection failed. */
static int send_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Wait until fd is readable or ms pass. Returns 1 readable (or error/hangup), 0 timeout. */
static int wait_readable(int fd, int ms) {
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, ms);
        if (r < 0 && errno == EINTR) continue;
        return r != 0;
    }
}

/* Receive into buf; returns bytes (> 0), 0 at EOF, -1 on error or after `ms` idle. */
static ssize_t recv_some(int fd, char *buf, size_t n, int ms) {
    if (!wait_readable(fd, ms)) return -1;
    for (;;) {
        ssize_t k = recv(fd, buf, n, 0);
        if (k < 0 && errno == EINTR) continue;
        return k;
    }
}

/*
 * Close after an error response: send FIN, then read and drop what the client still sends
 * (bounded in bytes and time), so that closing with unread data does not reset the connection
 * before the client has read the response.
 */
static void linger_close(int fd, char *scratch, size_t n) {
    shutdown(fd, SHUT_WR);
    size_t dropped = 0;
    while (dropped < 1024 * 1024) {
        ssize_t k = recv_some(fd, scratch, n, 1000);
        if (k <= 0) break;
        dropped += (size_t)k;
    }
    close(fd);
}

static const char *reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

/* Append the k bytes at s to out[*n..cap) (keeping room for a final NUL); 0, or -1 if they do not fit. */
static int put_n(char *out, size_t cap, size_t *n, const char *s, size_t k) {
    if (*n + k >= cap) return -1;
    memcpy(out + *n, s, k);
    *n += k;
    return 0;
}

/* Append the string s (as put_n). */
static int put(char *out, size_t cap, size_t *n, const char *s) { return put_n(out, cap, n, s, strlen(s)); }

/* Append a string literal, its length known at compile time. */
#define PUT_LIT(out, cap, n, lit) put_n(out, cap, n, "" lit, sizeof lit - 1)

/* Append the decimal form of v (as put). */
static int put_u(char *out, size_t cap, size_t *n, unsigned long v) {
    char digits[24];
    char *end = digits + sizeof digits, *d = end;
    do *--d = (char)('0' + v % 10); while ((v /= 10) != 0);
    return put_n(out, cap, n, d, (size_t)(end - d));
}

/*
 * Write the status line and common fields into out (capacity cap). `extra` holds further
 * complete header lines (or ""). Returns the length, or 0 if it does not fit. Built by
 * appending rather than with snprintf: this runs for every response, and the formatter costs
 * the guest more instructions than the rest of the head.
 */
static size_t head(char *out, size_t cap, int status, const char *type, size_t length, int keep_alive, const char *extra) {
    size_t n = 0;
    if (PUT_LIT(out, cap, &n, "HTTP/1.1 ") || put_u(out, cap, &n, (unsigned long)status) || PUT_LIT(out, cap, &n, " ") ||
        put(out, cap, &n, reason(status)) || PUT_LIT(out, cap, &n, "\r\nServer: ilwaco-httpd\r\nContent-Type: ") ||
        put(out, cap, &n, type) || PUT_LIT(out, cap, &n, "\r\nContent-Length: ") || put_u(out, cap, &n, (unsigned long)length) ||
        (keep_alive ? PUT_LIT(out, cap, &n, "\r\nConnection: keep-alive\r\n") : PUT_LIT(out, cap, &n, "\r\nConnection: close\r\n")) ||
        put(out, cap, &n, extra) || PUT_LIT(out, cap, &n, "\r\n"))
        return 0;
    out[n] = 0;
    return n;
}

/* Answer with a small HTML error page (no body for HEAD). Returns 0 or -1 (connection failed). */
static int send_error(int fd, struct conn_buffers *b, int status, int is_head, int keep_alive, const char *extra) {
    char body[160];
    int bn = snprintf(body, sizeof body, "<!doctype html>\n<title>%d %s</title>\n<h1>%d %s</h1>\n", status, reason(status), status, reason(status));
    size_t hn = head(b->out, sizeof b->out, status, "text/html; charset=utf-8", (size_t)bn, keep_alive, extra);
    if (!is_head) {
        memcpy(b->out + hn, body, (size_t)bn);
        hn += (size_t)bn;
    }
    return send_all(fd, b->out, hn);
}

/* Percent-encode `path` for a Location field into out (capacity cap). 0, or -1 if too long. */
static int encode_path(const char *path, char *out, size_t cap) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-._~/!$&'()*+,;=:@", *p);
        if (o + 4 >= cap) return -1;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = 0;
    return 0;
}

/*
 * "/docs" -> "/docs/", so that relative links in docs/index.html resolve. Its 12 KiB of buffers
 * live in a frame of their own, taken only on a redirect: in serve_asset's frame they pushed
 * every send 12 KiB deeper, so a worker's stack spanned four pages per request where two do,
 * and swapping writes and reads every page a swapped VM touched (HotOS paper 3.2).
 */
static __attribute__((noinline)) int redirect_dir(int fd, struct conn_buffers *b, const struct request *r) {
    char loc[3 * REQ_MAX_TARGET + 32], enc[3 * REQ_MAX_TARGET + 8];
    if (encode_path(r->path, enc, sizeof enc) < 0) return send_error(fd, b, 414, r->is_head, 0, "");
    snprintf(loc, sizeof loc, "Location: /%s/\r\n", enc);
    return send_error(fd, b, 301, r->is_head, r->keep_alive, loc);
}

/* The index.html of directory `path` (which ends in '/' or is empty), or NULL. Own frame: as redirect_dir. */
static __attribute__((noinline)) const struct ilwaco_asset *find_index(const char *path) {
    char name[REQ_MAX_TARGET + 16];
    snprintf(name, sizeof name, "%sindex.html", path);
    return ilwaco_asset_find(name);
}

/* Answer a parsed GET or HEAD. Returns 0, or -1 when the connection failed. */
static int serve_asset(int fd, struct conn_buffers *b, const struct request *r) {
    size_t n = strlen(r->path);
    const struct ilwaco_asset *a;
    if (n == 0 || r->path[n - 1] == '/') {
        a = find_index(r->path);
    } else {
        a = ilwaco_asset_find(r->path);
        if (!a && ilwaco_asset_isdir(r->path)) return redirect_dir(fd, b, r);
    }
    if (!a) return send_error(fd, b, 404, r->is_head, r->keep_alive, "");
    size_t hn = head(b->out, sizeof b->out, 200, mime_type(a->path), a->size, r->keep_alive, "");
    if (r->is_head) return send_all(fd, b->out, hn);
    if (a->size <= CONN_OUT_MAX) {
        /* Small document: one send for head and body. */
        memcpy(b->out + hn, a->data, a->size);
        return send_all(fd, b->out, hn + a->size);
    }
    if (send_all(fd, b->out, hn) < 0) return -1;
    return send_all(fd, a->data, a->size); /* zero-copy from the image */
}

/*
 * Wait (up to CONN_IDLE_MS) for the next request on a kept-alive connection. Returns 1 when
 * data (or EOF) arrived, 0 when the connection should be closed: idle too long, or idle while
 * other clients wait for a worker (the pool has one thread per open connection).
 */
static int await_next_request(int fd, int (*others_waiting)(void)) {
    for (int waited = 0; waited < CONN_IDLE_MS; waited += CONN_IDLE_CHECK_MS) {
        if (wait_readable(fd, CONN_IDLE_CHECK_MS)) return 1;
        if (others_waiting && others_waiting()) return 0;
    }
    return 0;
}

void conn_serve(int fd, struct conn_buffers *b, int (*others_waiting)(void)) {
    size_t len = 0;
    for (int served = 0;; served++) {
        /* Collect a complete header section (leading blank lines are ignored, RFC 9112 2.2). */
        size_t hlen;
        for (;;) {
            size_t skip = 0;
            while (skip < len && (b->in[skip] == '\r' || b->in[skip] == '\n')) skip++;
            if (skip) {
                memmove(b->in, b->in + skip, len - skip);
                len -= skip;
            }
            hlen = request_head_length(b->in, len);
            if (hlen) break;
            if (len == sizeof b->in) {
                int status = memchr(b->in, '\n', len) ? 431 : 414;
                send_error(fd, b, status, 0, 0, "");
                linger_close(fd, b->in, sizeof b->in);
                return;
            }
            if (len == 0 && served > 0 && !await_next_request(fd, others_waiting)) {
                close(fd);
                return;
            }
            ssize_t k = recv_some(fd, b->in + len, sizeof b->in - len, CONN_IDLE_MS);
            if (k <= 0) {
                if (k < 0 && len > 0) send_error(fd, b, 408, 0, 0, "");
                close(fd);
                return;
            }
            len += (size_t)k;
        }

        struct request r;
        int status = request_parse(b->in, hlen, &r);
        if (status) {
            send_error(fd, b, status, r.is_head, 0, "");
            linger_close(fd, b->in, sizeof b->in);
            return;
        }
        int failed;
        if (r.is_get || r.is_head) failed = serve_asset(fd, b, &r);
        else failed = send_error(fd, b, 405, 0, r.keep_alive, "Allow: GET, HEAD\r\n");
        if (failed) {
            close(fd);
            return;
        }

        /* Drop the head, then the body (Content-Length bytes), keeping what follows. */
        memmove(b->in, b->in + hlen, len - hlen);
        len -= hlen;
        size_t body = (size_t)r.content_length;
        size_t now = body < len ? body : len;
        memmove(b->in, b->in + now, len - now);
        len -= now;
        body -= now;
        while (body > 0) {
            ssize_t k = recv_some(fd, b->in, body < sizeof b->in ? body : sizeof b->in, CONN_IDLE_MS);
            if (k <= 0) {
                close(fd);
                return;
            }
            body -= (size_t)k;
        }
        if (!r.keep_alive) {
            /* Unread pipelined requests would make close() reset the connection and could
             * destroy the response in flight: half-close and drain instead. */
            if (len > 0) linger_close(fd, b->in, sizeof b->in);
            else close(fd);
            return;
        }
    }
}
