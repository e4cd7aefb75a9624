/* unistd.h: read/write/close, routing descriptors to the console or to sockets. */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "../internal.h"
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

ssize_t read(int fd, void *buf, size_t len) {
    if (ilwaco_is_socket(fd)) return recv(fd, buf, len, 0);
    if (fd == STDIN_FILENO) {
        if (len == 0) return 0;
        for (;;) {
            int eof = 0;
            size_t n = ilwaco_console_read(buf, len, &eof);
            if (n > 0) return (ssize_t)n;
            if (eof) return 0;
            __ilwaco_wait_console();
        }
    }
    errno = EBADF;
    return -1;
}

ssize_t write(int fd, const void *buf, size_t len) {
    if (ilwaco_is_socket(fd)) return send(fd, buf, len, 0);
    if (fd == STDOUT_FILENO || fd == STDERR_FILENO) {
        fflush(stdout); /* keep order with buffered printf output */
        return (ssize_t)ilwaco_console_write(buf, len);
    }
    errno = EBADF;
    return -1;
}

int close(int fd) {
    if (ilwaco_is_socket(fd)) return ilwaco_socket_close(fd);
    if (fd >= 0 && fd <= STDERR_FILENO) return 0;
    errno = EBADF;
    return -1;
}
#endif
