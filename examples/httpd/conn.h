/* conn.h: serving one HTTP connection from the image's assets. */
#ifndef HTTPD_CONN_H
#define HTTPD_CONN_H

#include "request.h"

/** Bytes of a response (head + body) that are copied into one send; larger bodies go separately. */
#define CONN_OUT_MAX (16 * 1024)
/** How long an idle keep-alive connection (or an unfinished request) may wait, in ms. */
#define CONN_IDLE_MS 10000
/**
 * Between requests, how often (ms) an idle keep-alive connection checks whether accepted
 * connections are waiting for a worker; if so it is closed to free its worker.
 */
#define CONN_IDLE_CHECK_MS 200

/** Per-thread buffers, allocated once when the pool starts (paper 4.2.2: pre-allocated). */
struct conn_buffers {
    char in[REQ_MAX_HEADER];
    char out[CONN_OUT_MAX + 512];
};

/**
 * Serve requests on the connected socket `fd` until the client closes, asks to close, sends
 * an HTTP/1.0 request, idles for CONN_IDLE_MS (or CONN_IDLE_CHECK_MS while `others_waiting()`
 * returns nonzero), or sends something answered with an error that ends the connection (400,
 * 413, 414, 431, 501, 505). Closes `fd`. Handles pipelined requests.
 */
void conn_serve(int fd, struct conn_buffers *b, int (*others_waiting)(void));

#endif
