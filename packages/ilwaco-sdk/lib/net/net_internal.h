/*
 * Private interface between the modules of Ilwaco's TCP/IP stack. One module per layer:
 * netif (virtual NIC driver), ether, arp, ipv4, icmp, udp, tcp_* (RFC 9293), socket, poll,
 * checksum, timer (deadline list), ring (byte buffers).
 *
 * Everything runs in thread context: frames are handled from the scheduler's event poll and
 * socket calls run in the calling thread; threads are non-preemptive, so no locks. Nothing
 * here blocks except the socket layer's explicit waits.
 * Addresses and ports are kept in network byte order in every struct; sequence numbers in
 * host order.
 */
#ifndef ILWACO_NET_INTERNAL_H
#define ILWACO_NET_INTERNAL_H
#include "../internal.h"
#include <ilwaco/net.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

extern struct ilwaco_net_stats __net_stats;
#define NSTAT(f) (__net_stats.f++)

/* ---- interface configuration (from the virtual registers) ---- */
struct net_if {
    uint32_t mtu;
    int up;
};
extern struct net_if __net_if;

/* The VM's MAC and IPv4 settings are read from the read-only virtual registers whenever they
 * are needed, never cached: a clone of a booted VM (Yakima.addVms) finds its own values there
 * although it never ran net_start. Addresses are in network order, as the registers hold them. */
#define NET_MAC ((const uint8_t *)(uintptr_t)(DENALI_VREG_RO_BASE + DENALI_VREG_RO_MAC))
static inline uint32_t net_addr(void) { return DENALI_VREG_RO_U32(DENALI_VREG_RO_IPV4_ADDR); }
static inline uint32_t net_netmask(void) { return DENALI_VREG_RO_U32(DENALI_VREG_RO_IPV4_NETMASK); }
static inline uint32_t net_gateway(void) { return DENALI_VREG_RO_U32(DENALI_VREG_RO_IPV4_GATEWAY); }

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t rd32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void wr16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void wr32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
/* Network-order 32-bit value stored at p, as the raw word (for addresses). */
static inline uint32_t rdaddr(const uint8_t *p) {
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}
static inline void wraddr(uint8_t *p, uint32_t v) { __builtin_memcpy(p, &v, 4); }

/* ---- checksum.c ---- */
/** One's-complement sum of len bytes (RFC 1071), folded to 16 bits but not complemented. */
uint32_t net_sum(const void *data, size_t len, uint32_t sum);
/** Fold and complement: the value to store in a checksum field. */
uint16_t net_fold(uint32_t sum);
/** Pseudo-header sum for TCP/UDP (RFC 9293 3.1, RFC 768). */
uint32_t net_pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len);
/** The NIC offers checksum offload (VREG_RO.NET_FEATURES has NET_FEATURE_CSUM; set by net_start):
 * frames go out with FRAME_FLAG_TX_CSUM and the IPv4 header, TCP and UDP checksums left to Yakima. */
extern int net_csum_offload;
/** The frame being input arrived with FRAME_FLAG_RX_CSUM_VALID: Yakima verified its IPv4 header
 * and TCP/UDP checksums, so the stack does not sum them again (set by netif_poll_rx per frame). */
extern int net_rx_csum_valid;

/* ---- timer.c: the network deadline list ---- */
struct net_timer {
    struct net_timer *next, *prev; /* in the deadline list while armed */
    uint64_t deadline; /* ticks */
    void (*fn)(void *arg);
    void *arg;
    int armed;
    /* Deferrable: its deadline does not bound the VM's IDLE; it runs at the first poll after
     * it (set before arming; see timer_init_deferrable). */
    int deferrable;
};
void timer_init(struct net_timer *t, void (*fn)(void *), void *arg);
/** A timer whose work is only cleanup nobody waits for (a TIME-WAIT connection's end): it never
 * wakes the VM; it runs when the VM next runs the stack for another reason. */
void timer_init_deferrable(struct net_timer *t, void (*fn)(void *), void *arg);
void timer_arm(struct net_timer *t, uint64_t deadline);
void timer_cancel(struct net_timer *t);
/** Run every timer whose deadline has passed. */
void timer_run_expired(uint64_t now);
/** Earliest deadline of the timers that are not deferrable (ILWACO_NO_DEADLINE: none). */
uint64_t timer_next_deadline(void);
int timer_count(void);

/* ---- ring.c: bounded byte ring buffers ---- */
struct ring {
    uint8_t *buf;
    uint32_t cap, head, len; /* bytes */
};
int ring_alloc(struct ring *r, uint32_t cap);
void ring_free(struct ring *r);
static inline uint32_t ring_space(const struct ring *r) { return r->cap - r->len; }
/** Append up to n bytes; returns bytes stored. */
uint32_t ring_write(struct ring *r, const void *src, uint32_t n);
/** Copy n bytes starting off bytes after head into dst (off + n <= cap). */
void ring_peek(const struct ring *r, uint32_t off, void *dst, uint32_t n);
/** Store n bytes at off bytes after head without changing len (off + n <= cap). */
void ring_poke(struct ring *r, uint32_t off, const void *src, uint32_t n);
void ring_consume(struct ring *r, uint32_t n);

/* ---- netif.c: the virtual NIC driver ---- */
#define NET_FRAME_MAX 1514
#define ETH_HDR 14
#define IP_HDR 20
/** A Tx buffer for one frame (NET_FRAME_MAX bytes), or NULL when the Tx queue is full. */
uint8_t *netif_tx_buffer(void);
/** Queue the frame built in the buffer netif_tx_buffer returned. */
void netif_tx_commit(uint8_t *frame, uint32_t len);
/** Queue a copy of a frame. */
void netif_tx_copy(const uint8_t *frame, uint32_t len);
/** Hand queued frames to Yakima (one NET_SEND for the batch). */
void netif_flush(void);
/** Drain NET_RECV until empty, handing each frame to ether_input. */
void netif_poll_rx(void);
/** Allocate the driver's buffers: 0, or -1 when memory is short. */
int netif_init(void);
/** Install the scheduler hook (the stack is live from then on). */
void netif_start(void);

/* ---- ether.c ---- */
void ether_input(uint8_t *frame, uint32_t len);
/** Fill the Ethernet header (dst, our MAC, type) and queue the frame. */
void ether_output(uint8_t *frame, uint32_t len, const uint8_t *dst_mac, uint16_t ethertype);
extern const uint8_t ether_broadcast[6];

/* ---- arp.c ---- */
int arp_init(void);
void arp_input(const uint8_t *pkt, uint32_t len);
/**
 * Send the IPv4 frame in `frame` (Ethernet header to be filled) to next hop `nexthop`:
 * at once when resolved, else held (one packet per destination) while ARP asks.
 */
void arp_output(uint8_t *frame, uint32_t len, uint32_t nexthop);

/* ---- ipv4.c ---- */
void ipv4_input(uint8_t *pkt, uint32_t len);
/**
 * Fill the IPv4 header at frame+ETH_HDR for an `l4len`-byte payload already at
 * frame+ETH_HDR+IP_HDR, and route it. Returns 0, or -1 (ENETUNREACH) when no route.
 */
int ipv4_output(uint8_t *frame, uint32_t l4len, uint32_t dst, uint8_t proto);
/** True when addr is this VM's address. */
int ipv4_is_local(uint32_t addr);

/* ---- icmp.c / udp.c ---- */
void icmp_input(uint8_t *pkt, uint32_t len, uint32_t src, uint32_t dst);
void udp_input(uint8_t *pkt, uint32_t len, uint32_t src, uint32_t dst);

/* ---- tcp (tcp.h) ---- */
void tcp_input(uint8_t *seg, uint32_t len, uint32_t src, uint32_t dst);

/* ---- socket.c ---- */
/** Start the stack if needed: returns 0 or -1 (ENETDOWN). */
int net_start(void);
/** Every socket state change: wakes poll() sleepers. */
void sock_poll_wakeup(void);
extern struct ilwaco_waitq __net_poll_waitq;

/** Pseudo-random 32-bit value (ISNs, ephemeral ports): a keyed mix of the clock. */
uint32_t net_random(void);
#endif
