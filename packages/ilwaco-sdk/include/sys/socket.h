/*
 * sys/socket.h: BSD sockets over Ilwaco threads (paper 3.3: "the BSD sockets interface").
 *
 * Sockets are small integers (file descriptors) from ILWACO_SOCKET_FD_BASE up; AF_INET only,
 * SOCK_STREAM (TCP, RFC 9293) and SOCK_DGRAM (UDP, RFC 768). The stack (lib/net/) runs in
 * thread context: a blocking call sleeps the calling thread on the socket's wait queue and the
 * scheduler's NET_RX handling or a TCP timer wakes it; when every thread sleeps the VM idles
 * until the next timer or frame. A VM with no network (MTU register 0 or no IPv4 address)
 * fails socket calls that need one with ENETDOWN.
 *
 * Every function returns -1 and sets errno on failure (values below, Linux numbering);
 * errno is only valid until the calling thread next blocks or yields.
 */
#ifndef ILWACO_SYS_SOCKET_H
#define ILWACO_SYS_SOCKET_H
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h> /* struct timeval for SO_RCVTIMEO / SO_SNDTIMEO */

#ifdef __cplusplus
extern "C" {
#endif

/* Network errno values (Linux numbering; errno.h holds the general ones). */
#ifndef ENOTSOCK
#define ENOTSOCK 88
#define EDESTADDRREQ 89
#define EMSGSIZE 90
#define EPROTOTYPE 91
#define ENOPROTOOPT 92
#define EPROTONOSUPPORT 93
#define EOPNOTSUPP 95
#define EAFNOSUPPORT 97
#define EADDRINUSE 98
#define EADDRNOTAVAIL 99
#define ENETDOWN 100
#define ENETUNREACH 101
#define ECONNABORTED 103
#define ECONNRESET 104
#define ENOBUFS 105
#define EISCONN 106
#define ENOTCONN 107
#define ECONNREFUSED 111
#define EHOSTUNREACH 113
#define EALREADY 114
#define EINPROGRESS 115
#define EMFILE 24
#endif
#ifndef EWOULDBLOCK
#define EWOULDBLOCK EAGAIN
#endif

#define AF_UNSPEC 0
#define AF_INET 2
#define PF_INET AF_INET

#define SOCK_STREAM 1
#define SOCK_DGRAM 2
/** Or into socket()'s type: the socket starts non-blocking (EAGAIN instead of sleeping). */
#define SOCK_NONBLOCK 0x800

#define SOL_SOCKET 1
#define SO_REUSEADDR 2
#define SO_TYPE 3
#define SO_ERROR 4
#define SO_SNDBUF 7
#define SO_RCVBUF 8
#define SO_RCVTIMEO 20
#define SO_SNDTIMEO 21

/** recv/send flags. MSG_NOSIGNAL is accepted and ignored (there are no signals: EPIPE only). */
#define MSG_PEEK 0x2
#define MSG_DONTWAIT 0x40
#define MSG_WAITALL 0x100
#define MSG_NOSIGNAL 0x4000

#define SHUT_RD 0
#define SHUT_WR 1
#define SHUT_RDWR 2

/** Largest listen() backlog; larger values are clamped. */
#define SOMAXCONN 128

/** First descriptor number socket() hands out (0-2 are the console). */
#define ILWACO_SOCKET_FD_BASE 3
/** Most sockets open at once per VM. */
#define ILWACO_MAX_SOCKETS 128

struct sockaddr {
    sa_family_t sa_family;
    char sa_data[14];
};

/**
 * Create a socket. domain: AF_INET; type: SOCK_STREAM or SOCK_DGRAM, optionally | SOCK_NONBLOCK;
 * protocol: 0 or the matching IPPROTO_*. Buffers default to 64 KiB each way (SO_SNDBUF/RCVBUF).
 * Errors: EAFNOSUPPORT, EPROTONOSUPPORT, EMFILE (ILWACO_MAX_SOCKETS open), ENOMEM, ENETDOWN.
 */
int socket(int domain, int type, int protocol);
/**
 * Give the socket a local address (sockaddr_in; address INADDR_ANY or this VM's; port 0 picks
 * an ephemeral port 49152-65535). Errors: EINVAL (already bound), EADDRINUSE (port taken; TCP
 * with SO_REUSEADDR may reuse a port whose other users are not listening), EADDRNOTAVAIL.
 */
int bind(int fd, const struct sockaddr *addr, socklen_t len);
/**
 * Accept TCP connections (RFC 9293 LISTEN). backlog (clamped to 1..SOMAXCONN) bounds the
 * completed connections waiting for accept(); half-open (SYN-RECEIVED) connections are
 * bounded separately (2 x backlog, at least 16): when full, the oldest is dropped (SYN flood).
 * Binds an ephemeral port if unbound. Errors: EOPNOTSUPP (UDP), EINVAL (connected).
 */
int listen(int fd, int backlog);
/**
 * Take the next established connection, sleeping while there is none (EAGAIN when
 * non-blocking). Stores the peer in *addr (if not NULL, truncated to *len). The new socket
 * inherits TCP_NODELAY and buffer sizes. Errors: EINVAL (not listening), EMFILE, EAGAIN.
 */
int accept(int fd, struct sockaddr *addr, socklen_t *len);
/**
 * TCP: active open (SYN with MSS option), sleeping until ESTABLISHED. Errors: ECONNREFUSED
 * (RST), ETIMEDOUT (no answer after 6 SYN retransmissions, RTO 1 s doubling: about 2 minutes;
 * sooner when SO_SNDTIMEO is set), ENETUNREACH (no route, or this VM's own address: there is
 * no loopback interface), EISCONN, EINPROGRESS (non-blocking: wait for POLLOUT, then read
 * SO_ERROR), EALREADY, EADDRNOTAVAIL (no ephemeral port left).
 * UDP: sets the default destination and filters received datagrams to that peer.
 */
int connect(int fd, const struct sockaddr *addr, socklen_t len);
/**
 * Queue up to len bytes for sending; sleeps until all are queued (or some, when
 * non-blocking/MSG_DONTWAIT: EAGAIN if none). Returns bytes queued. TCP segments are sent
 * subject to the peer's window, congestion window (RFC 5681) and Nagle unless TCP_NODELAY.
 * Errors: EPIPE (shut down for writing or peer reset after close), ECONNRESET, ETIMEDOUT,
 * ENOTCONN. UDP: one datagram to the connected peer (EDESTADDRREQ if none; EMSGSIZE > 1472).
 */
ssize_t send(int fd, const void *buf, size_t len, int flags);
/**
 * Read up to len received bytes, sleeping until at least one is available (MSG_WAITALL: all
 * len, unless EOF/error). Returns 0 at end of stream (peer's FIN, or SHUT_RD). MSG_PEEK leaves
 * the data queued. Errors: EAGAIN, ECONNRESET, ETIMEDOUT, ENOTCONN. UDP: one datagram, the
 * excess is discarded.
 */
ssize_t recv(int fd, void *buf, size_t len, int flags);
/** UDP: send one datagram to addr (addr NULL: the connected peer). TCP: addr is ignored. */
ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr, socklen_t alen);
/** UDP: receive one datagram and its source (stored in *addr when not NULL). */
ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr, socklen_t *alen);
/**
 * SHUT_WR: send FIN after the queued data (half-close; recv keeps working). SHUT_RD: further
 * recv returns 0 and arriving data is discarded. Errors: ENOTCONN, EINVAL.
 */
int shutdown(int fd, int how);
/**
 * Options. SOL_SOCKET: SO_REUSEADDR (int), SO_RCVBUF/SO_SNDBUF (int bytes, clamped to
 * 2 KiB..1 MiB; set before connect/listen; the TCP receive window is at most 65535 since
 * window scaling is not offered), SO_RCVTIMEO/SO_SNDTIMEO (struct timeval; 0 = forever),
 * SO_ERROR (get: pending error, cleared), SO_TYPE (get). IPPROTO_TCP: TCP_NODELAY (int),
 * TCP_MAXSEG (get: send MSS in bytes). Errors: ENOPROTOOPT, EINVAL (short optlen).
 */
int setsockopt(int fd, int level, int name, const void *val, socklen_t len);
int getsockopt(int fd, int level, int name, void *val, socklen_t *len);
/** Local / remote address of the socket (ENOTCONN from getpeername when not connected). */
int getsockname(int fd, struct sockaddr *addr, socklen_t *len);
int getpeername(int fd, struct sockaddr *addr, socklen_t *len);
/** 1 when fd is an open socket, else 0 (never sets errno). unistd's read/write/close route on it. */
int ilwaco_is_socket(int fd);
/** Close a socket (also close()): TCP sends FIN after queued data and finishes in the background; unread data → RST. */
int ilwaco_socket_close(int fd);

#ifdef __cplusplus
}
#endif
#endif
