/* arpa/inet.h: IPv4 text conversion. */
#ifndef ILWACO_ARPA_INET_H
#define ILWACO_ARPA_INET_H
#include <netinet/in.h>
#include <sys/socket.h>
/**
 * Parse dotted-quad text ("10.73.0.2": exactly four decimal parts 0-255) into *dst (a
 * struct in_addr, network order). af must be AF_INET. Returns 1, 0 for bad text, -1
 * (EAFNOSUPPORT) for another family.
 */
int inet_pton(int af, const char *src, void *dst);
/**
 * Format the address at src (network order) into dst (size bytes, at least INET_ADDRSTRLEN
 * to fit any). Returns dst, or NULL with ENOSPC / EAFNOSUPPORT.
 */
const char *inet_ntop(int af, const void *src, char *dst, socklen_t size);
/** Dotted quad to network order; INADDR_NONE (0xffffffff) for bad text. */
in_addr_t inet_addr(const char *s);
#define INADDR_NONE ((in_addr_t)0xffffffff)
/** Same as inet_pton(AF_INET, ...) but returns 1/0 only. */
int inet_aton(const char *s, struct in_addr *out);
/** Format into a static buffer (overwritten by the next call). */
char *inet_ntoa(struct in_addr a);
#endif
