/*
 * ARP (RFC 826) with a bounded cache. Entries are created only for hosts that talk to us or
 * that we talk to (RFC 826 "merge" rule), so unrelated broadcast traffic cannot fill the cache.
 * A destination being resolved holds at most one packet (the newest, as RFC 1122 2.3.2.2
 * suggests). Entries age lazily (checked on use), so the cache sets no periodic timer; only an
 * unanswered request arms one.
 */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "net_internal.h"
#include <stdlib.h>
#include <string.h>

#define ARP_ENTRIES 32
#define ARP_RETRY_US 500000u     /* between requests */
#define ARP_MAX_TRIES 4          /* requests before the held packet is dropped */
#define ARP_TTL_US 600000000ull  /* resolved entries are re-asked after 10 minutes */

enum { A_FREE, A_PENDING, A_RESOLVED };

struct arp_entry {
    uint32_t ip; /* network order */
    uint8_t mac[6];
    int state, tries;
    uint64_t updated, used;
    uint8_t *held; /* one frame waiting for resolution (malloc'd NET_FRAME_MAX) */
    uint32_t held_len;
    struct net_timer timer;
};

static struct arp_entry cache[ARP_ENTRIES];

static void send_request(uint32_t ip);

static void drop_held(struct arp_entry *e) {
    if (e->held) {
        free(e->held);
        e->held = NULL;
        NSTAT(arp_drop_unresolved);
    }
}

static void free_entry(struct arp_entry *e) {
    timer_cancel(&e->timer);
    drop_held(e);
    e->state = A_FREE;
    e->ip = 0;
}

static void retry_fire(void *arg) {
    struct arp_entry *e = arg;
    if (e->state != A_PENDING) return;
    if (++e->tries >= ARP_MAX_TRIES) {
        free_entry(e);
        return;
    }
    send_request(e->ip);
    timer_arm(&e->timer, ilwaco_ticks() + ARP_RETRY_US);
}

int arp_init(void) {
    for (int i = 0; i < ARP_ENTRIES; i++) timer_init(&cache[i].timer, retry_fire, &cache[i]);
    return 0;
}

static struct arp_entry *lookup(uint32_t ip) {
    for (int i = 0; i < ARP_ENTRIES; i++)
        if (cache[i].state != A_FREE && cache[i].ip == ip) return &cache[i];
    return NULL;
}

/* A free entry, evicting the least recently used resolved one (else the oldest pending). */
static struct arp_entry *alloc_entry(uint32_t ip) {
    struct arp_entry *victim = NULL;
    for (int i = 0; i < ARP_ENTRIES; i++) {
        struct arp_entry *e = &cache[i];
        if (e->state == A_FREE) {
            victim = e;
            break;
        }
        if (!victim || (e->state == A_RESOLVED && victim->state == A_PENDING) ||
            (e->state == victim->state && e->used < victim->used))
            victim = e;
    }
    if (victim->state != A_FREE) {
        NSTAT(arp_evictions);
        free_entry(victim);
    }
    memset(victim->mac, 0, 6);
    victim->ip = ip;
    victim->tries = 0;
    victim->held_len = 0;
    victim->updated = victim->used = ilwaco_ticks();
    return victim;
}

static void build(uint8_t *f, uint16_t op, const uint8_t *tha, uint32_t tpa, const uint8_t *eth_dst) {
    uint8_t *a = f + ETH_HDR;
    wr16(a, 1);          /* hardware: Ethernet */
    wr16(a + 2, 0x0800); /* protocol: IPv4 */
    a[4] = 6;
    a[5] = 4;
    wr16(a + 6, op);
    memcpy(a + 8, NET_MAC, 6);
    wraddr(a + 14, net_addr());
    memcpy(a + 18, tha, 6);
    wraddr(a + 24, tpa);
    ether_output(f, ETH_HDR + 28, eth_dst, 0x0806);
}

/* Requests are rate-limited (a token bucket: bursts of ARP_BURST, ARP_RATE_US apart after
 * that) so a flood of segments from spoofed addresses cannot turn into a broadcast storm;
 * a request skipped here is retried by the entry's timer. */
#define ARP_BURST 16
#define ARP_RATE_US 10000u
static uint32_t arp_tokens = ARP_BURST;
static uint64_t arp_refill;

static int arp_token(void) {
    uint64_t now = ilwaco_ticks();
    if (now - arp_refill >= ARP_RATE_US) {
        uint64_t add = (now - arp_refill) / ARP_RATE_US;
        arp_tokens = add + arp_tokens > ARP_BURST ? ARP_BURST : arp_tokens + (uint32_t)add;
        arp_refill = now;
    }
    if (!arp_tokens) return 0;
    arp_tokens--;
    return 1;
}

static void send_request(uint32_t ip) {
    static const uint8_t zero[6];
    if (!arp_token()) {
        NSTAT(arp_requests_limited);
        return;
    }
    uint8_t *f = netif_tx_buffer();
    if (!f) return;
    NSTAT(arp_requests_sent);
    build(f, 1, zero, ip, ether_broadcast);
}

static void resolved(struct arp_entry *e, const uint8_t *mac) {
    memcpy(e->mac, mac, 6);
    e->updated = ilwaco_ticks();
    if (e->state == A_PENDING) NSTAT(arp_resolved);
    e->state = A_RESOLVED;
    timer_cancel(&e->timer);
    if (e->held) {
        uint8_t *f = netif_tx_buffer();
        if (f) {
            memcpy(f, e->held, e->held_len);
            ether_output(f, e->held_len, e->mac, 0x0800);
        }
        free(e->held);
        e->held = NULL;
    }
}

void arp_input(const uint8_t *a, uint32_t len) {
    if (len < 28 || rd16(a) != 1 || rd16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4) {
        NSTAT(arp_drop_bad);
        return;
    }
    uint16_t op = rd16(a + 6);
    const uint8_t *sha = a + 8;
    uint32_t spa = rdaddr(a + 14), tpa = rdaddr(a + 24);
    /* A group address as sender hardware address would make us send unicast to everyone. */
    if ((op != 1 && op != 2) || (sha[0] & 1) || spa == net_addr()) {
        NSTAT(arp_drop_bad);
        return;
    }
    struct arp_entry *e = spa ? lookup(spa) : NULL;
    if (e) resolved(e, sha);
    if (tpa != net_addr()) return;
    if (!e && spa) {
        e = alloc_entry(spa);
        resolved(e, sha);
    }
    if (op == 1) {
        uint8_t *f = netif_tx_buffer();
        if (!f) return;
        NSTAT(arp_replies_sent);
        build(f, 2, sha, spa, sha);
    }
}

void arp_output(uint8_t *frame, uint32_t len, uint32_t nexthop) {
    /* `frame` is the driver's next Tx buffer, not yet committed: commit or copy it before any
     * ARP request is built, since that takes the same buffer. */
    struct arp_entry *e = lookup(nexthop);
    uint64_t now = ilwaco_ticks();
    if (e && e->state == A_RESOLVED) {
        e->used = now;
        ether_output(frame, len, e->mac, 0x0800);
        if (now - e->updated > ARP_TTL_US && !e->timer.armed) {
            /* Stale: keep using the old answer while asking again. */
            e->updated = now;
            send_request(nexthop);
        }
        return;
    }
    int fresh = 0;
    if (!e) {
        e = alloc_entry(nexthop);
        e->state = A_PENDING;
        fresh = 1;
    }
    if (!e->held) e->held = malloc(NET_FRAME_MAX);
    if (e->held) {
        memcpy(e->held, frame, len);
        e->held_len = len;
    } else {
        NSTAT(arp_drop_unresolved);
    }
    if (fresh) {
        send_request(nexthop);
        timer_arm(&e->timer, now + ARP_RETRY_US);
    }
}
#endif
