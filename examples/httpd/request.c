/* HTTP/1.x request head parsing (request.h). */
#include "request.h"
#include <ilwaco/assets.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

size_t request_head_length(const char *buf, size_t len) {
    /* memchr tests a word per step; the blank-line check runs only at each LF. */
    for (const char *p = buf, *end = buf + len; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++) {
        size_t i = (size_t)(p - buf);
        if (i + 1 < len && buf[i + 1] == '\n') return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') return i + 3;
    }
    return 0;
}

/* RFC 9110 5.6.2 tchar, as a bitmap of the 128 ASCII codes: digits, letters and !#$%&'*+-.^_`|~
 * (a table, because header names are checked byte by byte for every request). */
static int is_tchar(unsigned char c) {
    static const uint32_t map[4] = {0x00000000u, 0x03ff6cfau, 0xc7fffffeu, 0x57ffffffu};
    return c < 128 && (map[c >> 5] >> (c & 31) & 1);
}

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Case-insensitive: does the comma-separated list v[0..n) contain `token`? */
static int list_has(const char *v, size_t n, const char *token) {
    size_t tl = strlen(token), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t s = i;
        while (i < n && v[i] != ',') i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e - s == tl && strncasecmp(v + s, token, tl) == 0) return 1;
    }
    return 0;
}

/* Decode the target's path (origin-form or absolute-form) into r->path. Returns 0 or a status. */
static int parse_target(const char *t, size_t n, struct request *r) {
    if (n > REQ_MAX_TARGET) return 414;
    if (n >= 7 && t[0] != '/' && strncasecmp(t, "http://", 7) == 0) {
        size_t i = 7;
        while (i < n && t[i] != '/' && t[i] != '?' && t[i] != '#') i++;
        t += i;
        n -= i;
        if (n == 0 || t[0] != '/') t = "/", n = 1;
    }
    if (n == 0 || t[0] != '/') return 400;
    char dec[REQ_MAX_TARGET + 1];
    size_t d = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '?' || c == '#') break;
        if (c == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)t[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)t[i + 2]) : -1;
            if (hi < 0 || lo < 0) return 400;
            c = (unsigned char)(hi * 16 + lo);
            if (c == 0) return 400;
            i += 2;
        } else if (c <= 0x20 || c == 0x7f) {
            return 400;
        }
        dec[d++] = (char)c;
    }
    dec[d] = 0;
    int len = ilwaco_asset_normalize(dec, r->path, sizeof r->path);
    if (len == -1) return 400; /* ".." */
    if (len < 0) return 414;
    return 0;
}

/* The request line "METHOD SP target SP HTTP/1.x". */
static int parse_request_line(const char *s, size_t n, struct request *r) {
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)s[i])) i++;
    if (i == 0 || i >= sizeof r->method || i >= n || s[i] != ' ') return 400;
    memcpy(r->method, s, i);
    r->method[i] = 0;
    r->is_get = strcmp(r->method, "GET") == 0;
    r->is_head = strcmp(r->method, "HEAD") == 0;
    const char *t = s + i + 1;
    const char *end = s + n;
    const char *sp = memchr(t, ' ', (size_t)(end - t));
    if (!sp || sp == t) return 400;
    /* A bare CR: the method (tchar), the version (checked byte by byte) and every field line
     * (name tchar, value no CTL) reject one by themselves; only the target needs a look. */
    if (memchr(t, '\r', (size_t)(sp - t))) return 400;
    const char *v = sp + 1;
    if (end - v != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.') return 400;
    if (v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9') return 400;
    r->minor = v[7] - '0';
    if (v[5] != '1') {
        r->minor = 1;
        return 505;
    }
    return parse_target(t, (size_t)(sp - t), r);
}

int request_parse(const char *buf, size_t len, struct request *r) {
    memset(r, 0, sizeof *r);
    r->minor = 1;
    int hosts = 0, close = 0, keep = 0, chunked = 0, have_length = 0, status = 0;
    long length = 0;
    size_t pos = 0, lineno = 0;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl) return 400;
        const char *s = buf + pos;
        size_t n = (size_t)(nl - s);
        pos += n + 1;
        if (n > 0 && s[n - 1] == '\r') n--;
        if (lineno++ == 0) {
            status = parse_request_line(s, n, r);
            if (status == 400 || status == 505) return status;
            continue; /* a 414 is reported after the fields are checked for worse errors */
        }
        if (n == 0) break; /* end of the header section */
        if (s[0] == ' ' || s[0] == '\t') return 400; /* obsolete line folding */
        size_t k = 0;
        while (k < n && is_tchar((unsigned char)s[k])) k++;
        if (k == 0 || k >= n || s[k] != ':') return 400;
        const char *v = s + k + 1;
        size_t vn = n - k - 1;
        while (vn && (*v == ' ' || *v == '\t')) v++, vn--;
        while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t')) vn--;
        for (size_t j = 0; j < vn; j++) {
            unsigned char c = (unsigned char)v[j];
            if ((c < 0x20 && c != '\t') || c == 0x7f) return 400;
        }
        if (k == 4 && strncasecmp(s, "host", 4) == 0) {
            hosts++;
        } else if (k == 10 && strncasecmp(s, "connection", 10) == 0) {
            close |= list_has(v, vn, "close");
            keep |= list_has(v, vn, "keep-alive");
        } else if (k == 17 && strncasecmp(s, "transfer-encoding", 17) == 0) {
            chunked = 1;
        } else if (k == 14 && strncasecmp(s, "content-length", 14) == 0) {
            if (vn == 0) return 400;
            long value = 0;
            for (size_t j = 0; j < vn; j++) {
                if (v[j] < '0' || v[j] > '9') return 400;
                if (value > (REQ_MAX_BODY + 1L) * 10) continue; /* saturate: too large anyway */
                value = value * 10 + (v[j] - '0');
            }
            if (have_length && value != length) return 400;
            have_length = 1;
            length = value;
        }
    }
    (void)keep; /* HTTP/1.0 keep-alive is not offered: 1.0 connections always close */
    if (r->minor >= 1 && hosts != 1) return 400;
    if (hosts > 1) return 400;
    if (status) return status;
    if (chunked) return 501;
    if (length > REQ_MAX_BODY) return 413;
    r->content_length = length;
    r->keep_alive = r->minor >= 1 && !close;
    return 0;
}
