/* poll.h: wait for several sockets at once. */
#ifndef ILWACO_POLL_H
#define ILWACO_POLL_H
#define POLLIN 0x001
#define POLLPRI 0x002
#define POLLOUT 0x004
#define POLLERR 0x008
#define POLLHUP 0x010
#define POLLNVAL 0x020
struct pollfd {
    int fd;
    short events;
    short revents;
};
typedef unsigned int nfds_t;
/**
 * Report which of fds[0..nfds) are ready: POLLIN (data, EOF, or a connection to accept),
 * POLLOUT (send buffer space; a non-blocking connect finished), POLLERR (pending SO_ERROR),
 * POLLHUP (peer closed and nothing left to read, or reset), POLLNVAL (not a socket; negative
 * fds are skipped). Sleeps the calling thread until one is ready or timeout_ms passes
 * (-1: forever, 0: just look). Returns the number of fds with revents != 0, 0 on timeout.
 */
int poll(struct pollfd *fds, nfds_t nfds, int timeout_ms);
#endif
