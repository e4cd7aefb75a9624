/* netinet/in.h: IPv4 addresses, ports and byte order (RFC 791). */
#ifndef ILWACO_NETINET_IN_H
#define ILWACO_NETINET_IN_H
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define IPPROTO_IP 0
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

/** An IPv4 address in network byte order. */
struct in_addr {
    in_addr_t s_addr;
};
struct sockaddr_in {
    sa_family_t sin_family; /* AF_INET */
    in_port_t sin_port;     /* network byte order */
    struct in_addr sin_addr;
    unsigned char sin_zero[8];
};

#define INADDR_ANY ((in_addr_t)0x00000000)
#define INADDR_BROADCAST ((in_addr_t)0xffffffff)
#define INADDR_LOOPBACK ((in_addr_t)0x7f000001) /* host order; no loopback interface in Ilwaco */
#define INET_ADDRSTRLEN 16

/** Byte-order conversion (the guest is little-endian; the network is big-endian). */
static inline uint16_t htons(uint16_t x) { return (uint16_t)((x << 8) | (x >> 8)); }
static inline uint16_t ntohs(uint16_t x) { return htons(x); }
static inline uint32_t htonl(uint32_t x) { return __builtin_bswap32(x); }
static inline uint32_t ntohl(uint32_t x) { return __builtin_bswap32(x); }
#endif
