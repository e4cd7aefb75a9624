/*
 * IPv4 (RFC 791, RFC 1122 3.2.1): header validation, demultiplexing, output routing on the
 * VM's one subnet with the default gateway beyond it. Fragments are dropped and counted: the
 * stack never sends them (MSS from the MTU, DF set) and reassembly would be an unbounded
 * memory commitment an untrusted peer could exploit.
 */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "net_internal.h"

#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_OFFMASK 0x1fff

static uint16_t ip_id;

int ipv4_is_local(uint32_t a) { return a == net_addr(); }

static uint32_t subnet_broadcast(void) { return net_addr() | ~net_netmask(); }

void ipv4_input(uint8_t *p, uint32_t len) {
    if (len < IP_HDR) {
        NSTAT(ip_drop_short);
        return;
    }
    if ((p[0] >> 4) != 4) {
        NSTAT(ip_drop_version);
        return;
    }
    uint32_t hl = (uint32_t)(p[0] & 15) * 4;
    if (hl < IP_HDR || hl > len) {
        NSTAT(ip_drop_hdrlen);
        return;
    }
    uint32_t total = rd16(p + 2);
    /* Ethernet pads short frames, so the frame may be longer than the datagram, never shorter. */
    if (total < hl || total > len) {
        NSTAT(ip_drop_len);
        return;
    }
    if (!net_rx_csum_valid && net_fold(net_sum(p, hl, 0)) != 0) {
        NSTAT(ip_drop_checksum);
        return;
    }
    uint16_t frag = rd16(p + 6);
    if ((frag & IP_MF) || (frag & IP_OFFMASK)) {
        NSTAT(ip_drop_fragment);
        return;
    }
    uint32_t src = rdaddr(p + 12), dst = rdaddr(p + 16);
    int bcast = dst == 0xffffffffu || dst == subnet_broadcast();
    if (dst != net_addr() && !bcast) {
        NSTAT(ip_drop_not_for_us);
        return;
    }
    /* RFC 1122 3.2.1.3: a source that is a broadcast, multicast, zero, loopback or our own
     * address is bogus (and would make us answer to everyone or to ourselves). */
    uint8_t s0 = ((const uint8_t *)&src)[0];
    if (src == 0 || src == 0xffffffffu || src == subnet_broadcast() || s0 >= 224 || s0 == 127 ||
        src == net_addr()) {
        NSTAT(ip_drop_bad_src);
        return;
    }
    NSTAT(ip_rx);
    uint8_t *l4 = p + hl;
    uint32_t l4len = total - hl;
    switch (p[9]) {
    case IPPROTO_ICMP:
        if (!bcast) icmp_input(l4, l4len, src, dst);
        else NSTAT(icmp_drop_other); /* no answers to broadcast pings (RFC 1122 3.2.2.6) */
        break;
    case IPPROTO_UDP:
        udp_input(l4, l4len, src, dst);
        break;
    case IPPROTO_TCP:
        if (!bcast) tcp_input(l4, l4len, src, dst);
        else NSTAT(tcp_drop_bad_flags);
        break;
    default:
        NSTAT(ip_drop_proto);
    }
}

int ipv4_output(uint8_t *frame, uint32_t l4len, uint32_t dst, uint8_t proto) {
    uint32_t nexthop;
    int bcast = dst == 0xffffffffu || dst == subnet_broadcast();
    if (bcast) nexthop = dst;
    else if ((dst & net_netmask()) == (net_addr() & net_netmask()) && dst != net_addr()) nexthop = dst;
    else if (net_gateway() && dst != net_addr()) nexthop = net_gateway();
    else {
        NSTAT(ip_drop_no_route);
        return -1;
    }
    uint8_t *p = frame + ETH_HDR;
    p[0] = 0x45;
    p[1] = 0;
    wr16(p + 2, (uint16_t)(IP_HDR + l4len));
    wr16(p + 4, ip_id++);
    wr16(p + 6, IP_DF);
    p[8] = 64;
    p[9] = proto;
    p[10] = p[11] = 0;
    wraddr(p + 12, net_addr());
    wraddr(p + 16, dst);
    if (!net_csum_offload) { /* else the NIC fills it in (FRAME_FLAG_TX_CSUM) */
        uint16_t ck = net_fold(net_sum(p, IP_HDR, 0));
        __builtin_memcpy(p + 10, &ck, 2);
    }
    NSTAT(ip_tx);
    uint32_t len = ETH_HDR + IP_HDR + l4len;
    if (bcast) ether_output(frame, len, ether_broadcast, 0x0800);
    else arp_output(frame, len, nexthop);
    return 0;
}
#endif
