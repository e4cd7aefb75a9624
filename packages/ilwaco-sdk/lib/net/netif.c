/*
 * Driver for the Denali virtual NIC (paper 3.1.2): frames leave in batches, one NET_SEND
 * virtual instruction for everything queued, and arrive in batches, NET_RECV drained until
 * empty after a (batched) NET_RX interrupt. Also the scheduler hook that runs the stack.
 */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "net_internal.h"
#include <stdlib.h>

#define TXQ_SLOTS 128  /* frames queued in the driver before NET_SEND */
#define RX_BATCH 32    /* frames per NET_RECV */
#define RX_BUF 1536    /* bytes per receive buffer (>= NET_FRAME_MAX) */
#define RX_MAX_BATCHES 64 /* per poll, so one flood cannot hold the CPU forever */
#define TX_RETRY_US 200   /* Tx FIFO full: let Yakima's packet scheduler drain it */

static uint8_t *tx_slots;          /* TXQ_SLOTS x NET_FRAME_MAX */
static uint32_t tx_len[TXQ_SLOTS];
static uint32_t tx_head, tx_count;
static uint8_t *rx_bufs;           /* RX_BATCH x RX_BUF; +2 so IP headers are 4-byte aligned */
static struct denali_frame_desc descs[DENALI_NET_MAX_BATCH]; /* NET_SEND */
/* NET_RECV's own: Yakima writes only the LEN (and FLAGS) of the frames it fills, so only those
 * are set up again for the next NET_RECV, not all RX_BATCH (a VM polls two or three times per
 * request: setting up 32 descriptors each time was ~5 % of its instructions per request). */
static struct denali_frame_desc rx_descs[RX_BATCH];
static uint32_t rx_descs_dirty = RX_BATCH;
static int rx_descs_offload = -1; /* net_csum_offload when they were set up */
static struct net_timer tx_retry;
static int rx_more; /* the last drain stopped early: drain again without waiting for NET_RX */

static void tx_retry_fire(void *arg) {
    (void)arg;
    netif_flush();
}

int netif_init(void) {
    tx_slots = malloc(TXQ_SLOTS * NET_FRAME_MAX);
    rx_bufs = malloc(RX_BATCH * RX_BUF + 2);
    if (!tx_slots || !rx_bufs) {
        free(tx_slots);
        free(rx_bufs);
        tx_slots = rx_bufs = NULL;
        return -1;
    }
    timer_init(&tx_retry, tx_retry_fire, NULL);
    return 0;
}

uint8_t *netif_tx_buffer(void) {
    if (tx_count >= TXQ_SLOTS) netif_flush();
    if (tx_count >= TXQ_SLOTS) {
        NSTAT(tx_queue_drops);
        return NULL;
    }
    return tx_slots + ((tx_head + tx_count) % TXQ_SLOTS) * NET_FRAME_MAX;
}

void netif_tx_commit(uint8_t *frame, uint32_t len) {
    uint32_t slot = (tx_head + tx_count) % TXQ_SLOTS;
    if (tx_count >= TXQ_SLOTS || frame != tx_slots + slot * NET_FRAME_MAX) return; /* not ours */
    tx_len[slot] = len;
    tx_count++;
    /* Half full: send now rather than risk dropping; normally the poll or socket call flushes. */
    if (tx_count >= TXQ_SLOTS / 2) netif_flush();
}

void netif_tx_copy(const uint8_t *frame, uint32_t len) {
    uint8_t *b = netif_tx_buffer();
    if (!b || len > NET_FRAME_MAX) return;
    __builtin_memcpy(b, frame, len);
    netif_tx_commit(b, len);
}

void netif_flush(void) {
    if (tx_count == 0 || tx_retry.armed) return;
    while (tx_count) {
        uint32_t n = 0;
        /* Contiguous run of slots from tx_head (the queue wraps). */
        while (n < tx_count && tx_head + n < TXQ_SLOTS) {
            descs[n].addr = (uint32_t)(uintptr_t)(tx_slots + (tx_head + n) * NET_FRAME_MAX);
            descs[n].len = (uint16_t)tx_len[tx_head + n];
            descs[n].flags = net_csum_offload ? DENALI_FRAME_FLAG_TX_CSUM : 0;
            n++;
        }
        struct denali_net_args a = {(uint32_t)(uintptr_t)descs, n, 0};
        denali_hypercall(DENALI_HYPERCALL_NET_SEND, &a);
        uint32_t done = a.done > n ? n : a.done;
        __net_stats.tx_batches++;
        __net_stats.tx_frames += done;
        for (uint32_t i = 0; i < done; i++) __net_stats.tx_bytes += tx_len[tx_head + i];
        tx_head = (tx_head + done) % TXQ_SLOTS;
        tx_count -= done;
        if (done < n) {
            /* Yakima's Tx FIFO is full: it drains only while we are not running, so idle a moment. */
            NSTAT(tx_fifo_full);
            timer_arm(&tx_retry, ilwaco_ticks() + TX_RETRY_US);
            return;
        }
    }
    tx_head = 0;
}

void netif_poll_rx(void) {
    rx_more = 0;
    uint8_t *base = rx_bufs + 2;
    if (rx_descs_offload != net_csum_offload) {
        rx_descs_offload = net_csum_offload;
        rx_descs_dirty = RX_BATCH;
    }
    for (int batch = 0; batch < RX_MAX_BATCHES; batch++) {
        for (uint32_t i = 0; i < rx_descs_dirty; i++) {
            rx_descs[i].addr = (uint32_t)(uintptr_t)(base + i * RX_BUF);
            rx_descs[i].len = RX_BUF;
            /* Ask for FLAGS only from a Yakima that offers them: an older one reads LEN as a u32. */
            rx_descs[i].flags = net_csum_offload ? DENALI_FRAME_FLAG_RX_FLAGS : 0;
        }
        struct denali_net_args a = {(uint32_t)(uintptr_t)rx_descs, RX_BATCH, 0};
        denali_hypercall(DENALI_HYPERCALL_NET_RECV, &a);
        uint32_t done = a.done > RX_BATCH ? RX_BATCH : a.done;
        /* Yakima clears a descriptor's LEN before it checks the buffer, so one more than `done`
         * may have been written (a refused buffer faults the VM; be exact anyway). */
        rx_descs_dirty = done < RX_BATCH ? done + 1 : RX_BATCH;
        if (done == 0) return;
        __net_stats.rx_batches++;
        uint32_t lens[RX_BATCH];
        uint8_t valid[RX_BATCH];
        for (uint32_t i = 0; i < done; i++) {
            lens[i] = rx_descs[i].len > RX_BUF ? RX_BUF : rx_descs[i].len;
            valid[i] = net_csum_offload && (rx_descs[i].flags & DENALI_FRAME_FLAG_RX_CSUM_VALID);
        }
        for (uint32_t i = 0; i < done; i++) {
            __net_stats.rx_frames++;
            __net_stats.rx_bytes += lens[i];
            if (valid[i]) __net_stats.rx_csum_valid++;
            net_rx_csum_valid = valid[i];
            ether_input(base + i * RX_BUF, lens[i]);
            net_rx_csum_valid = 0;
        }
        /* Answers to this batch leave as one batch (paper 3.1.2). */
        netif_flush();
        /* A short batch emptied the Rx FIFO: skip the NET_RECV that would return nothing (a VM
         * exit on the process backend). Frames arriving later raise NET_RX again. */
        if (done < RX_BATCH) return;
    }
    rx_more = 1;
}

static void net_poll(uint32_t bits) {
    if ((bits & DENALI_IRQ_NET_RX) || rx_more) netif_poll_rx();
    timer_run_expired(ilwaco_ticks());
    netif_flush();
}

static uint64_t net_next_deadline(void) { return rx_more ? 0 : timer_next_deadline(); }

const struct ilwaco_net_hooks __net_hooks = {net_poll, net_next_deadline};

void netif_start(void) {
    __ilwaco_net_hooks = &__net_hooks;
    netif_poll_rx(); /* frames that arrived before the stack started */
}
#endif
