/*
 * poll(): one thread waits for several sockets. Every socket event wakes the socket's own wait
 * queue and the shared poll wait queue (socket.c sock_wakeup); the woken pollers re-check
 * their sets. A poll of one socket (the common case: one thread per connection) sleeps on that
 * socket's queue instead, so an event on one connection does not wake every polling thread.
 */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "net_internal.h"
#include <errno.h>
#include <poll.h>

int sock_revents(int fd, int events);
struct ilwaco_waitq *sock_waitq(int fd);

int poll(struct pollfd *fds, nfds_t nfds, int timeout_ms) {
    if (nfds > 0 && !fds) {
        errno = EFAULT;
        return -1;
    }
    uint64_t deadline = timeout_ms < 0 ? ILWACO_NO_DEADLINE : ilwaco_ticks() + (uint64_t)timeout_ms * 1000u;
    for (;;) {
        int ready = 0;
        for (nfds_t i = 0; i < nfds; i++) {
            fds[i].revents = 0;
            if (fds[i].fd < 0) continue;
            fds[i].revents = (short)sock_revents(fds[i].fd, fds[i].events);
            if (fds[i].revents) ready++;
        }
        if (ready || timeout_ms == 0) {
            netif_flush();
            return ready;
        }
        netif_flush();
        struct ilwaco_waitq *q = nfds == 1 && fds[0].fd >= 0 ? sock_waitq(fds[0].fd) : NULL;
        if (__ilwaco_waitq_sleep(q ? q : &__net_poll_waitq, deadline) != 0) {
            /* Deadline: one last look. */
            ready = 0;
            for (nfds_t i = 0; i < nfds; i++) {
                fds[i].revents = fds[i].fd < 0 ? 0 : (short)sock_revents(fds[i].fd, fds[i].events);
                if (fds[i].revents) ready++;
            }
            return ready;
        }
    }
}
#endif
