/*
 * The network deadline list: every pending network timer (TCP retransmission, delayed ACK,
 * TIME-WAIT, ARP retry, Tx retry), sorted by deadline. The scheduler folds the head into its
 * IDLE timeout (internal.h, ilwaco_net_hooks). There is no periodic tick: with nothing pending
 * the list is empty and the VM can idle forever (paper 3.4).
 */
#ifdef ILWACO_NET_UNITY /* compiled through lib/net.c */
#include "net_internal.h"

/* Two lists sorted by deadline: timers that bound the IDLE timeout, and deferrable ones. */
struct timer_list {
    struct net_timer *head, *tail;
};
static struct timer_list timers, deferred;
static int armed_count;

/*
 * Doubly linked, so cancelling is O(1) (a retransmission timer is cancelled by nearly every
 * ACK), and searched on arming from the end whose deadline is nearer: a server holds dozens of
 * TIME-WAIT timers (30 s, each the latest when armed) behind a few short ones (retransmission,
 * delayed ACK), and walking from the head past all of them for each TIME-WAIT, or from the
 * tail for each retransmission timer, was ~10 % of its instructions per request.
 */
void timer_init(struct net_timer *t, void (*fn)(void *), void *arg) {
    t->next = t->prev = NULL;
    t->deadline = 0;
    t->fn = fn;
    t->arg = arg;
    t->armed = 0;
    t->deferrable = 0;
}

void timer_init_deferrable(struct net_timer *t, void (*fn)(void *), void *arg) {
    timer_init(t, fn, arg);
    t->deferrable = 1;
}

static struct timer_list *list_of(struct net_timer *t) { return t->deferrable ? &deferred : &timers; }

static void unlink_timer(struct net_timer *t) {
    struct timer_list *l = list_of(t);
    if (t->prev) t->prev->next = t->next;
    else l->head = t->next;
    if (t->next) t->next->prev = t->prev;
    else l->tail = t->prev;
    t->next = t->prev = NULL;
    t->armed = 0;
    armed_count--;
}

void timer_cancel(struct net_timer *t) {
    if (t->armed) unlink_timer(t);
}

void timer_arm(struct net_timer *t, uint64_t deadline) {
    timer_cancel(t);
    t->deadline = deadline;
    struct timer_list *l = list_of(t);
    /* After the last timer with a deadline <= ours (equal deadlines fire in arming order). */
    struct net_timer *after;
    if (!l->head || deadline >= l->tail->deadline) {
        after = l->tail;
    } else if (deadline < l->head->deadline) {
        after = NULL;
    } else if (deadline - l->head->deadline < l->tail->deadline - deadline) {
        after = l->head; /* deadline >= its: walk forward */
        while (after->next && after->next->deadline <= deadline) after = after->next;
    } else {
        after = l->tail->prev; /* the tail's deadline is later: walk back */
        while (after && after->deadline > deadline) after = after->prev;
    }
    t->prev = after;
    t->next = after ? after->next : l->head;
    if (t->next) t->next->prev = t;
    else l->tail = t;
    if (after) after->next = t;
    else l->head = t;
    t->armed = 1;
    armed_count++;
}

void timer_run_expired(uint64_t now) {
    /* Bounded: a handler may re-arm its timer for "now"; it then waits for the next poll. */
    int budget = armed_count + 16;
    for (;;) {
        struct net_timer *a = timers.head, *b = deferred.head;
        if (a && a->deadline > now) a = NULL;
        if (b && b->deadline > now) b = NULL;
        if ((!a && !b) || budget-- <= 0) break;
        struct net_timer *t = !b || (a && a->deadline <= b->deadline) ? a : b;
        unlink_timer(t);
        NSTAT(timers_fired);
        t->fn(t->arg);
    }
}

uint64_t timer_next_deadline(void) { return timers.head ? timers.head->deadline : ILWACO_NO_DEADLINE; }
int timer_count(void) { return armed_count; }
int ilwaco_net_timers_armed(void) { return armed_count; }
#endif
