/* arpa/inet.h: dotted-quad conversions (RFC 791 addresses). */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>

int inet_pton(int af, const char *src, void *dst) {
    if (af != AF_INET) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    uint32_t parts[4];
    const char *p = src;
    for (int i = 0; i < 4; i++) {
        if (*p < '0' || *p > '9') return 0;
        uint32_t v = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (uint32_t)(*p++ - '0');
            /* No leading zeros (inet_pton rejects "010" rather than read it as octal). */
            if (++digits > 3 || v > 255 || (digits == 2 && v < 10)) return 0;
        }
        parts[i] = v;
        if (i < 3 && *p++ != '.') return 0;
    }
    if (*p) return 0;
    uint8_t *o = dst;
    for (int i = 0; i < 4; i++) o[i] = (uint8_t)parts[i];
    return 1;
}

const char *inet_ntop(int af, const void *src, char *dst, socklen_t size) {
    if (af != AF_INET) {
        errno = EAFNOSUPPORT;
        return NULL;
    }
    const uint8_t *a = src;
    char tmp[INET_ADDRSTRLEN];
    int n = snprintf(tmp, sizeof tmp, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
    if (n < 0 || (socklen_t)n >= size) {
        errno = ENOSPC;
        return NULL;
    }
    for (int i = 0; i <= n; i++) dst[i] = tmp[i];
    return dst;
}

in_addr_t inet_addr(const char *s) {
    struct in_addr a;
    return inet_pton(AF_INET, s, &a) == 1 ? a.s_addr : INADDR_NONE;
}

int inet_aton(const char *s, struct in_addr *out) { return inet_pton(AF_INET, s, out) == 1; }

char *inet_ntoa(struct in_addr a) {
    static char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, buf, sizeof buf);
    return buf;
}
#endif
