/*
 * request.h: parsing an HTTP/1.x request head (RFC 9112): the request line and the header
 * fields httpd acts on. No I/O: conn.c hands it a complete header section.
 */
#ifndef HTTPD_REQUEST_H
#define HTTPD_REQUEST_H

#include <stddef.h>

/** Largest request header section (request line + fields + blank line), in bytes. */
#define REQ_MAX_HEADER 8192
/** Longest request target (URI) in bytes; longer ones get 414. */
#define REQ_MAX_TARGET 2048
/** Largest request body httpd will read and discard (keeping the connection); more: 413. */
#define REQ_MAX_BODY 65536

/** The parts of a request httpd uses. */
struct request {
    char method[16];             /* e.g. "GET" */
    int is_get, is_head;         /* method is GET / HEAD */
    int minor;                   /* HTTP/1.<minor> */
    int keep_alive;              /* connection stays open after the response */
    long content_length;         /* body bytes that follow the head (0 if none) */
    char path[REQ_MAX_TARGET + 2]; /* decoded, normalized (ilwaco_asset_normalize), no leading '/' */
};

/**
 * Length of the header section at the start of buf[0..len) including its terminating blank
 * line ("\r\n\r\n" or "\n\n"), or 0 if it is not complete yet.
 */
size_t request_head_length(const char *buf, size_t len);

/**
 * Parse the header section buf[0..len) (as measured by request_head_length) into *r.
 * Returns 0 when it is a well-formed request, else the HTTP status to answer with (the
 * connection must then be closed): 400 (malformed request line, header field, target,
 * percent-encoding, a ".." segment, missing/duplicate Host in HTTP/1.1, bad Content-Length),
 * 414 (target longer than REQ_MAX_TARGET), 413 (Content-Length over REQ_MAX_BODY),
 * 501 (Transfer-Encoding: request bodies are only accepted with Content-Length),
 * 505 (HTTP major version other than 1). `r->minor` and `r->is_head` are set as soon as
 * the request line is understood, so an error response can honour them.
 */
int request_parse(const char *buf, size_t len, struct request *r);

#endif
