/*
 * The network deadline list: every pending network timer (TCP retransmission, delayed ACK,
 * TIME-WAIT, ARP retry, Tx retry), sorted by deadline. The scheduler folds the head into its
 * IDLE timeout (internal.h, ilwaco_net_hooks). There is no periodic tick: with nothing pending
 * the list is empty and the VM can idle forever (paper 3.4).
 */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "net_internal.h"

static struct net_timer *timers;
static int armed_count;

void timer_init(struct net_timer *t, void (*fn)(void *), void *arg) {
    t->next = NULL;
    t->deadline = 0;
    t->fn = fn;
    t->arg = arg;
    t->armed = 0;
}

void timer_cancel(struct net_timer *t) {
    if (!t->armed) return;
    for (struct net_timer **l = &timers; *l; l = &(*l)->next) {
        if (*l == t) {
            *l = t->next;
            break;
        }
    }
    t->next = NULL;
    t->armed = 0;
    armed_count--;
}

void timer_arm(struct net_timer *t, uint64_t deadline) {
    timer_cancel(t);
    t->deadline = deadline;
    struct net_timer **l = &timers;
    while (*l && (*l)->deadline <= deadline) l = &(*l)->next;
    t->next = *l;
    *l = t;
    t->armed = 1;
    armed_count++;
}

void timer_run_expired(uint64_t now) {
    /* Bounded: a handler may re-arm its timer for "now"; it then waits for the next poll. */
    int budget = armed_count + 16;
    while (timers && timers->deadline <= now && budget-- > 0) {
        struct net_timer *t = timers;
        timers = t->next;
        t->next = NULL;
        t->armed = 0;
        armed_count--;
        NSTAT(timers_fired);
        t->fn(t->arg);
    }
}

uint64_t timer_next_deadline(void) { return timers ? timers->deadline : ILWACO_NO_DEADLINE; }
int timer_count(void) { return armed_count; }
int ilwaco_net_timers_armed(void) { return armed_count; }
#endif
