/* Counters (ilwaco/net.h): printing. The name table is kept in the order of the struct. */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "net_internal.h"
#include <stdio.h>

static const struct {
    const char *name;
    unsigned offset;
} fields[] = {
    {"rx_frames", __builtin_offsetof(struct ilwaco_net_stats, rx_frames)},
    {"rx_bytes", __builtin_offsetof(struct ilwaco_net_stats, rx_bytes)},
    {"rx_batches", __builtin_offsetof(struct ilwaco_net_stats, rx_batches)},
    {"tx_frames", __builtin_offsetof(struct ilwaco_net_stats, tx_frames)},
    {"tx_bytes", __builtin_offsetof(struct ilwaco_net_stats, tx_bytes)},
    {"tx_batches", __builtin_offsetof(struct ilwaco_net_stats, tx_batches)},
    {"tx_fifo_full", __builtin_offsetof(struct ilwaco_net_stats, tx_fifo_full)},
    {"tx_queue_drops", __builtin_offsetof(struct ilwaco_net_stats, tx_queue_drops)},
    {"rx_csum_valid", __builtin_offsetof(struct ilwaco_net_stats, rx_csum_valid)},
    {"eth_drop_short", __builtin_offsetof(struct ilwaco_net_stats, eth_drop_short)},
    {"eth_drop_not_for_us", __builtin_offsetof(struct ilwaco_net_stats, eth_drop_not_for_us)},
    {"eth_drop_ethertype", __builtin_offsetof(struct ilwaco_net_stats, eth_drop_ethertype)},
    {"arp_drop_bad", __builtin_offsetof(struct ilwaco_net_stats, arp_drop_bad)},
    {"arp_requests_sent", __builtin_offsetof(struct ilwaco_net_stats, arp_requests_sent)},
    {"arp_replies_sent", __builtin_offsetof(struct ilwaco_net_stats, arp_replies_sent)},
    {"arp_resolved", __builtin_offsetof(struct ilwaco_net_stats, arp_resolved)},
    {"arp_drop_unresolved", __builtin_offsetof(struct ilwaco_net_stats, arp_drop_unresolved)},
    {"arp_evictions", __builtin_offsetof(struct ilwaco_net_stats, arp_evictions)},
    {"arp_requests_limited", __builtin_offsetof(struct ilwaco_net_stats, arp_requests_limited)},
    {"ip_rx", __builtin_offsetof(struct ilwaco_net_stats, ip_rx)},
    {"ip_tx", __builtin_offsetof(struct ilwaco_net_stats, ip_tx)},
    {"ip_drop_short", __builtin_offsetof(struct ilwaco_net_stats, ip_drop_short)},
    {"ip_drop_version", __builtin_offsetof(struct ilwaco_net_stats, ip_drop_version)},
    {"ip_drop_hdrlen", __builtin_offsetof(struct ilwaco_net_stats, ip_drop_hdrlen)},
    {"ip_drop_len", __builtin_offsetof(struct ilwaco_net_stats, ip_drop_len)},
    {"ip_drop_checksum", __builtin_offsetof(struct ilwaco_net_stats, ip_drop_checksum)},
    {"ip_drop_fragment", __builtin_offsetof(struct ilwaco_net_stats, ip_drop_fragment)},
    {"ip_drop_not_for_us", __builtin_offsetof(struct ilwaco_net_stats, ip_drop_not_for_us)},
    {"ip_drop_bad_src", __builtin_offsetof(struct ilwaco_net_stats, ip_drop_bad_src)},
    {"ip_drop_proto", __builtin_offsetof(struct ilwaco_net_stats, ip_drop_proto)},
    {"ip_drop_no_route", __builtin_offsetof(struct ilwaco_net_stats, ip_drop_no_route)},
    {"icmp_echo_requests", __builtin_offsetof(struct ilwaco_net_stats, icmp_echo_requests)},
    {"icmp_echo_replies_sent", __builtin_offsetof(struct ilwaco_net_stats, icmp_echo_replies_sent)},
    {"icmp_echo_replies_received", __builtin_offsetof(struct ilwaco_net_stats, icmp_echo_replies_received)},
    {"icmp_drop_bad", __builtin_offsetof(struct ilwaco_net_stats, icmp_drop_bad)},
    {"icmp_drop_other", __builtin_offsetof(struct ilwaco_net_stats, icmp_drop_other)},
    {"udp_rx", __builtin_offsetof(struct ilwaco_net_stats, udp_rx)},
    {"udp_tx", __builtin_offsetof(struct ilwaco_net_stats, udp_tx)},
    {"udp_drop_short", __builtin_offsetof(struct ilwaco_net_stats, udp_drop_short)},
    {"udp_drop_checksum", __builtin_offsetof(struct ilwaco_net_stats, udp_drop_checksum)},
    {"udp_drop_no_port", __builtin_offsetof(struct ilwaco_net_stats, udp_drop_no_port)},
    {"udp_drop_queue_full", __builtin_offsetof(struct ilwaco_net_stats, udp_drop_queue_full)},
    {"tcp_rx_segments", __builtin_offsetof(struct ilwaco_net_stats, tcp_rx_segments)},
    {"tcp_tx_segments", __builtin_offsetof(struct ilwaco_net_stats, tcp_tx_segments)},
    {"tcp_drop_short", __builtin_offsetof(struct ilwaco_net_stats, tcp_drop_short)},
    {"tcp_drop_hdrlen", __builtin_offsetof(struct ilwaco_net_stats, tcp_drop_hdrlen)},
    {"tcp_drop_checksum", __builtin_offsetof(struct ilwaco_net_stats, tcp_drop_checksum)},
    {"tcp_drop_bad_flags", __builtin_offsetof(struct ilwaco_net_stats, tcp_drop_bad_flags)},
    {"tcp_drop_no_socket", __builtin_offsetof(struct ilwaco_net_stats, tcp_drop_no_socket)},
    {"tcp_drop_out_of_window", __builtin_offsetof(struct ilwaco_net_stats, tcp_drop_out_of_window)},
    {"tcp_drop_bad_ack", __builtin_offsetof(struct ilwaco_net_stats, tcp_drop_bad_ack)},
    {"tcp_drop_ooo_full", __builtin_offsetof(struct ilwaco_net_stats, tcp_drop_ooo_full)},
    {"tcp_drop_backlog_full", __builtin_offsetof(struct ilwaco_net_stats, tcp_drop_backlog_full)},
    {"tcp_drop_syn_evicted", __builtin_offsetof(struct ilwaco_net_stats, tcp_drop_syn_evicted)},
    {"tcp_rst_sent", __builtin_offsetof(struct ilwaco_net_stats, tcp_rst_sent)},
    {"tcp_rst_received", __builtin_offsetof(struct ilwaco_net_stats, tcp_rst_received)},
    {"tcp_challenge_acks", __builtin_offsetof(struct ilwaco_net_stats, tcp_challenge_acks)},
    {"tcp_active_opens", __builtin_offsetof(struct ilwaco_net_stats, tcp_active_opens)},
    {"tcp_passive_opens", __builtin_offsetof(struct ilwaco_net_stats, tcp_passive_opens)},
    {"tcp_established", __builtin_offsetof(struct ilwaco_net_stats, tcp_established)},
    {"tcp_resets", __builtin_offsetof(struct ilwaco_net_stats, tcp_resets)},
    {"tcp_timeouts", __builtin_offsetof(struct ilwaco_net_stats, tcp_timeouts)},
    {"tcp_retransmits", __builtin_offsetof(struct ilwaco_net_stats, tcp_retransmits)},
    {"tcp_rto_expirations", __builtin_offsetof(struct ilwaco_net_stats, tcp_rto_expirations)},
    {"tcp_fast_retransmits", __builtin_offsetof(struct ilwaco_net_stats, tcp_fast_retransmits)},
    {"tcp_partial_acks", __builtin_offsetof(struct ilwaco_net_stats, tcp_partial_acks)},
    {"tcp_dup_acks", __builtin_offsetof(struct ilwaco_net_stats, tcp_dup_acks)},
    {"tcp_delayed_acks", __builtin_offsetof(struct ilwaco_net_stats, tcp_delayed_acks)},
    {"tcp_window_probes", __builtin_offsetof(struct ilwaco_net_stats, tcp_window_probes)},
    {"tcp_ooo_segments", __builtin_offsetof(struct ilwaco_net_stats, tcp_ooo_segments)},
    {"tcp_time_wait_recycled", __builtin_offsetof(struct ilwaco_net_stats, tcp_time_wait_recycled)},
    {"timers_fired", __builtin_offsetof(struct ilwaco_net_stats, timers_fired)},
};

_Static_assert(sizeof fields / sizeof fields[0] == sizeof(struct ilwaco_net_stats) / sizeof(uint32_t),
               "every counter has a name");

void ilwaco_net_print_stats(const char *tag) {
    const uint8_t *base = (const uint8_t *)&__net_stats;
    for (unsigned i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        uint32_t v = *(const uint32_t *)(const void *)(base + fields[i].offset);
        if (v) printf("%snet: %s %u\n", tag ? tag : "", fields[i].name, (unsigned)v);
    }
}
#endif
