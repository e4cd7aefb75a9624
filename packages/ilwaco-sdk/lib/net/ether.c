/* Ethernet II framing (no FCS: Yakima's virtual NIC carries frames without it). */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "net_internal.h"

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP 0x0806

const uint8_t ether_broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static int mac_eq(const uint8_t *a, const uint8_t *b) {
    for (int i = 0; i < 6; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

void ether_input(uint8_t *frame, uint32_t len) {
    if (len < ETH_HDR) {
        NSTAT(eth_drop_short);
        return;
    }
    /* Group addresses other than broadcast: we join no multicast group. */
    if (!mac_eq(frame, NET_MAC) && !mac_eq(frame, ether_broadcast)) {
        NSTAT(eth_drop_not_for_us);
        return;
    }
    switch (rd16(frame + 12)) {
    case ETHERTYPE_IPV4:
        ipv4_input(frame + ETH_HDR, len - ETH_HDR);
        break;
    case ETHERTYPE_ARP:
        arp_input(frame + ETH_HDR, len - ETH_HDR);
        break;
    default:
        NSTAT(eth_drop_ethertype);
    }
}

void ether_output(uint8_t *frame, uint32_t len, const uint8_t *dst_mac, uint16_t ethertype) {
    __builtin_memcpy(frame, dst_mac, 6);
    __builtin_memcpy(frame + 6, NET_MAC, 6);
    wr16(frame + 12, ethertype);
    netif_tx_commit(frame, len);
}
#endif
