/*
 * ilwaco/net.h: Ilwaco's TCP/IP stack (lib/net/) beyond the BSD socket calls: configuration,
 * counters, ping.
 *
 * The stack starts on the first socket call (or ilwaco_net_init). Addresses come from the
 * read-only virtual registers (MAC, IPV4_ADDR/NETMASK/GATEWAY, MTU: paper 3.1.2, no DHCP).
 * It costs nothing while idle: timers exist only for pending work (a retransmission, a delayed
 * ACK, TIME-WAIT, an unanswered ARP request), so a VM with no connections in flight idles
 * with no timeout (paper 3.4).
 */
#ifndef ILWACO_NET_H
#define ILWACO_NET_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Start the stack (idempotent). Returns 0, or -1 with errno ENETDOWN when the VM has no NIC
 * (MTU register 0) or no IPv4 address.
 */
int ilwaco_net_init(void);

/** This VM's interface settings; addresses in network byte order, mtu in bytes. */
struct ilwaco_net_config {
    uint8_t mac[6];
    uint32_t addr, netmask, gateway;
    uint32_t mtu;
};
/** Fill *out from the virtual registers. Returns 0, or -1 (ENETDOWN) without a network. */
int ilwaco_net_config(struct ilwaco_net_config *out);

/**
 * Counters since boot. Every received frame that is not delivered to a socket or answered is
 * counted in exactly one *_drop_* or *_bad_* field.
 */
struct ilwaco_net_stats {
    /* NIC driver (netif.c) */
    uint32_t rx_frames, rx_bytes, rx_batches; /* batches = NET_RECV hypercalls returning frames */
    uint32_t tx_frames, tx_bytes, tx_batches; /* batches = NET_SEND hypercalls */
    uint32_t tx_fifo_full;                    /* NET_SEND accepted fewer frames than offered */
    uint32_t tx_queue_drops;                  /* frames dropped: driver's Tx queue full */
    uint32_t rx_csum_valid;                   /* frames Yakima verified (FRAME_FLAG_RX_CSUM_VALID) */
    /* Ethernet / ARP */
    uint32_t eth_drop_short, eth_drop_not_for_us, eth_drop_ethertype;
    uint32_t arp_drop_bad, arp_requests_sent, arp_replies_sent, arp_resolved;
    uint32_t arp_drop_unresolved; /* packets dropped: no ARP reply after the retries */
    uint32_t arp_evictions;
    uint32_t arp_requests_limited; /* requests not sent: rate limit (flood protection) */
    /* IPv4 */
    uint32_t ip_rx, ip_tx;
    uint32_t ip_drop_short, ip_drop_version, ip_drop_hdrlen, ip_drop_len, ip_drop_checksum;
    uint32_t ip_drop_fragment, ip_drop_not_for_us, ip_drop_bad_src, ip_drop_proto;
    uint32_t ip_drop_no_route;
    /* ICMP */
    uint32_t icmp_echo_requests, icmp_echo_replies_sent, icmp_echo_replies_received;
    uint32_t icmp_drop_bad, icmp_drop_other;
    /* UDP */
    uint32_t udp_rx, udp_tx, udp_drop_short, udp_drop_checksum, udp_drop_no_port, udp_drop_queue_full;
    /* TCP input */
    uint32_t tcp_rx_segments, tcp_tx_segments;
    uint32_t tcp_drop_short, tcp_drop_hdrlen, tcp_drop_checksum, tcp_drop_bad_flags;
    uint32_t tcp_drop_no_socket;   /* answered with RST */
    uint32_t tcp_drop_out_of_window, tcp_drop_bad_ack, tcp_drop_ooo_full;
    uint32_t tcp_drop_backlog_full; /* completed handshakes refused: accept queue full */
    uint32_t tcp_drop_syn_evicted;  /* half-open connections evicted (SYN flood) */
    uint32_t tcp_rst_sent, tcp_rst_received, tcp_challenge_acks;
    /* TCP connections and loss recovery */
    uint32_t tcp_active_opens, tcp_passive_opens, tcp_established, tcp_resets, tcp_timeouts;
    uint32_t tcp_retransmits;       /* segments sent again (any cause) */
    uint32_t tcp_rto_expirations;   /* retransmission timer expiries (RFC 6298 5.4-5.6) */
    uint32_t tcp_fast_retransmits;  /* RFC 5681 3.2 */
    uint32_t tcp_partial_acks;      /* RFC 6582 partial acknowledgments */
    uint32_t tcp_dup_acks;
    uint32_t tcp_delayed_acks;      /* ACKs sent by the delayed-ACK timer */
    uint32_t tcp_window_probes;
    uint32_t tcp_ooo_segments;      /* segments queued out of order */
    uint32_t tcp_time_wait_recycled;
    uint32_t timers_fired;
};

/** Copy the counters into *out. */
void ilwaco_net_get_stats(struct ilwaco_net_stats *out);
/** Print every non-zero counter to stdout, one "net: name value" line each, prefixed by `tag`. */
void ilwaco_net_print_stats(const char *tag);

/** Number of TCP connections (any state but LISTEN/CLOSED, including TIME-WAIT) and armed timers. */
int ilwaco_net_tcp_connections(void);
int ilwaco_net_timers_armed(void);

/**
 * ICMP echo (RFC 792): send one echo request with `payload` bytes (0..1472) to `dst`
 * (network order) and sleep the calling thread until the matching reply or `timeout_us`.
 * Returns 0 and stores the round-trip time in µs in *rtt_us (may be NULL); -1 with errno
 * ETIMEDOUT, EINVAL (payload too large), ENETUNREACH or ENETDOWN.
 */
int ilwaco_ping(uint32_t dst, uint32_t payload, uint64_t timeout_us, uint64_t *rtt_us);

#ifdef __cplusplus
}
#endif
#endif
