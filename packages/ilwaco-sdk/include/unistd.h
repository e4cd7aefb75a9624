/*
 * unistd.h: descriptor I/O. Descriptors 0, 1 and 2 are the console (stdin, stdout, stderr);
 * ILWACO_SOCKET_FD_BASE and up are sockets (sys/socket.h).
 */
#ifndef ILWACO_UNISTD_H
#define ILWACO_UNISTD_H
#include <stddef.h>
#include <sys/types.h>
#define STDIN_FILENO 0
#define STDOUT_FILENO 1
#define STDERR_FILENO 2
/**
 * Read up to len bytes: a socket behaves as recv(fd, buf, len, 0); fd 0 reads the console,
 * sleeping until input arrives (0 at end of input). Others: -1, EBADF.
 */
ssize_t read(int fd, void *buf, size_t len);
/** Write len bytes: a socket is send(fd, buf, len, 0); fds 1 and 2 write the console (stdout flushed first). */
ssize_t write(int fd, const void *buf, size_t len);
/** Close a socket (see ilwaco_socket_close). Console descriptors: 0, no effect. Others: EBADF. */
int close(int fd);
#endif
