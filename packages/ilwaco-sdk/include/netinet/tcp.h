/* netinet/tcp.h: TCP-level socket options (level IPPROTO_TCP). */
#ifndef ILWACO_NETINET_TCP_H
#define ILWACO_NETINET_TCP_H
/** int: 1 disables Nagle's algorithm (RFC 896 / RFC 9293 3.7.4): small segments go at once. */
#define TCP_NODELAY 1
/** int, get only: the send maximum segment size (bytes), from the peer's MSS option. */
#define TCP_MAXSEG 2
#endif
