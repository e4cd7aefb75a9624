/*
 * Ilwaco threads (ilwaco/thread.h; paper 3.3). Non-preemptive: a thread runs until it blocks,
 * sleeps, yields or exits. Runnable threads wait in a FIFO run queue; sleeping threads in a
 * list sorted by deadline (the paper's priority queue). When nothing is runnable the
 * scheduler passes the time to the earliest deadline to the IDLE hypercall, or idles with no
 * timeout when a thread waits for console input, so an idle VM costs the host nothing
 * (paper 3.1.1). Interrupts are only noted by the upcall handler (lib/upcall.S); the
 * scheduler collects them here.
 */
#include "internal.h"
#include <ilwaco/thread.h>
#include <stdio.h>
#include <stdlib.h>

enum { T_RUNNING, T_RUNNABLE, T_BLOCKED, T_EXITED };

struct ilwaco_thread {
    uint32_t esp; /* saved stack pointer while switched out */
    int id;
    int state;
    void *stack; /* malloc'd stack, NULL for the main thread */
    thread_fn fn;
    void *arg;
    void *retval;
    /* Membership of at most one FIFO queue: run queue, a mutex, a condvar, console waiters. */
    struct ilwaco_thread *qnext;
    struct ilwaco_thread **qhead, **qtail;
    /* Sleep list (sorted by deadline). */
    struct ilwaco_thread *snext;
    int sleeping, timed_out;
    uint64_t deadline;
    struct ilwaco_thread *joiner;  /* thread blocked in thread_join on us */
    struct ilwaco_thread *joining; /* thread we are joining */
    struct ilwaco_thread *zombie_next;
    int net_wait; /* sleeping in __ilwaco_waitq_sleep */
};

/*
 * Below every thread stack lies a guard area filled with STACK_CANARY; its top word (the first
 * one an overflow reaches) is checked whenever the thread switches out. Overflows that stay
 * within the guard are always reported; larger ones may corrupt the heap first.
 */
#define STACK_CANARY 0x57ac4ca7u
#define STACK_GUARD 1024u

static struct ilwaco_thread main_thread;
static struct ilwaco_thread *current = &main_thread;
static struct ilwaco_thread *runq_head, *runq_tail;
static struct ilwaco_thread *console_head, *console_tail;
static struct ilwaco_thread *sleepers;
static struct ilwaco_thread *zombies; /* exited threads whose stacks are still allocated */
static int live_threads = 1, next_id = 1;
static int main_exited, main_status;
static struct thread_stats stats;
const struct ilwaco_net_hooks *__ilwaco_net_hooks;
static int net_waiters; /* threads in __ilwaco_waitq_sleep */

/* ---- queues ---- */

static void q_push(struct ilwaco_thread **head, struct ilwaco_thread **tail, struct ilwaco_thread *t) {
    t->qnext = NULL;
    t->qhead = head;
    t->qtail = tail;
    if (*tail) (*tail)->qnext = t;
    else *head = t;
    *tail = t;
}

static struct ilwaco_thread *q_pop(struct ilwaco_thread **head, struct ilwaco_thread **tail) {
    struct ilwaco_thread *t = *head;
    if (!t) return NULL;
    *head = t->qnext;
    if (!*head) *tail = NULL;
    t->qnext = NULL;
    t->qhead = t->qtail = NULL;
    return t;
}

/* Remove t from whatever queue it is on. */
static void q_unlink(struct ilwaco_thread *t) {
    if (!t->qhead) return;
    struct ilwaco_thread **link = t->qhead, *prev = NULL;
    while (*link && *link != t) {
        prev = *link;
        link = &(*link)->qnext;
    }
    if (*link == t) {
        *link = t->qnext;
        if (*t->qtail == t) *t->qtail = prev;
    }
    t->qnext = NULL;
    t->qhead = t->qtail = NULL;
}

static void sleep_insert(struct ilwaco_thread *t, uint64_t deadline) {
    t->deadline = deadline;
    t->sleeping = 1;
    struct ilwaco_thread **link = &sleepers;
    while (*link && (*link)->deadline <= deadline) link = &(*link)->snext;
    t->snext = *link;
    *link = t;
}

static void sleep_remove(struct ilwaco_thread *t) {
    if (!t->sleeping) return;
    for (struct ilwaco_thread **link = &sleepers; *link; link = &(*link)->snext) {
        if (*link == t) {
            *link = t->snext;
            break;
        }
    }
    t->snext = NULL;
    t->sleeping = 0;
}

static void make_runnable(struct ilwaco_thread *t) {
    t->state = T_RUNNABLE;
    q_push(&runq_head, &runq_tail, t);
}

/* ---- interrupts ---- */

static inline uint32_t xchg32(volatile uint32_t *p, uint32_t v) {
    __asm__ volatile("xchgl %0, %1" : "+r"(v), "+m"(*p) : : "memory");
    return v;
}

uint32_t ilwaco_take_interrupts(void) {
    uint32_t bits = xchg32(&DENALI_VREG_RW_U32(DENALI_VREG_RW_PENDING), 0);
    return bits | xchg32(&__ilwaco_irq_bits, 0);
}

static void set_interrupts(uint32_t on) { DENALI_VREG_RW_U32(DENALI_VREG_RW_INTERRUPT_ENABLE) = on; }

/* Collect interrupts and expired timers, making the threads they concern runnable. */
static void poll_events(void) {
    uint32_t bits = ilwaco_take_interrupts();
    if (bits & DENALI_IRQ_CONSOLE) {
        struct ilwaco_thread *t;
        while ((t = q_pop(&console_head, &console_tail))) make_runnable(t);
    }
    /* Frames and network timers are handled here, in thread context, so the stack needs no
     * locks (threads are non-preemptive); it wakes socket waiters through wait queues. */
    if (__ilwaco_net_hooks) __ilwaco_net_hooks->poll(bits);
    if (sleepers) {
        uint64_t now = ilwaco_ticks();
        while (sleepers && sleepers->deadline <= now) {
            struct ilwaco_thread *t = sleepers;
            sleep_remove(t);
            if (t->qhead) { /* timed condition wait: leave the condvar's queue */
                q_unlink(t);
                t->timed_out = 1;
            }
            make_runnable(t);
        }
    }
}

static __attribute__((noreturn)) void deadlock(void) {
    __ilwaco_stdio_flush_all();
    char msg[120];
    snprintf(msg, sizeof msg, "ilwaco: deadlock: %d thread%s blocked forever with nothing to wake %s\n", live_threads,
             live_threads == 1 ? "" : "s", live_threads == 1 ? "it" : "them");
    __ilwaco_fatal_write(msg);
    _Exit(ILWACO_EXIT_DEADLOCK);
}

/* Next thread to run: polls events, idles the VM while nothing is runnable. */
static struct ilwaco_thread *pick_next(void) {
    /* Interrupts stay off while we decide to idle, so a wake-up cannot slip between the
     * last look at PENDING and the IDLE hypercall (IDLE returns at once if one is pending). */
    set_interrupts(0);
    for (;;) {
        poll_events();
        struct ilwaco_thread *t = q_pop(&runq_head, &runq_tail);
        if (t) {
            set_interrupts(1);
            return t;
        }
        uint64_t timeout = ILWACO_IDLE_FOREVER;
        uint64_t deadline = sleepers ? sleepers->deadline : ILWACO_NO_DEADLINE;
        if (__ilwaco_net_hooks) {
            uint64_t nd = __ilwaco_net_hooks->next_deadline();
            if (nd < deadline) deadline = nd;
        }
        if (deadline != ILWACO_NO_DEADLINE) {
            uint64_t now = ilwaco_ticks();
            if (deadline <= now) continue;
            timeout = deadline - now;
        } else if (!console_head && !(net_waiters > 0 && __ilwaco_net_hooks)) {
            /* Threads waiting on sockets are not deadlocked: a frame may arrive any time,
             * so a server blocked in accept() idles forever (paper 3.4). */
            deadlock();
        }
        uint64_t before = ilwaco_ticks();
        stats.idle_calls++;
        ilwaco_idle(timeout);
        stats.idle_ticks += ilwaco_ticks() - before;
    }
}

static void reap(void) {
    struct ilwaco_thread **link = &zombies;
    while (*link) {
        struct ilwaco_thread *z = *link;
        if (z != current) {
            free(z->stack);
            z->stack = NULL;
            *link = z->zombie_next;
        } else {
            link = &z->zombie_next;
        }
    }
}

static __attribute__((noreturn)) void stack_overflow(struct ilwaco_thread *t) {
    __ilwaco_stdio_flush_all();
    char msg[100];
    snprintf(msg, sizeof msg, "ilwaco: thread %d overflowed its stack (give thread_create a larger stack size)\n", t->id);
    __ilwaco_fatal_write(msg);
    _Exit(134);
}

/* Switch to the next runnable thread; the caller has already queued or blocked itself. */
static void schedule(void) {
    struct ilwaco_thread *prev = current;
    if (prev->stack && ((volatile uint32_t *)prev->stack)[STACK_GUARD / 4 - 1] != STACK_CANARY) stack_overflow(prev);
    struct ilwaco_thread *next = pick_next();
    next->state = T_RUNNING;
    if (next != prev) {
        current = next;
        stats.context_switches++;
        __ilwaco_switch(&prev->esp, next->esp);
    }
    reap();
}

static void block(void) {
    current->state = T_BLOCKED;
    schedule();
}

void __ilwaco_wait_console(void) {
    q_push(&console_head, &console_tail, current);
    block();
}

/* ---- threads ---- */

void __ilwaco_thread_init(void) {
    main_thread.id = 0;
    main_thread.state = T_RUNNING;
    current = &main_thread;
    DENALI_VREG_RW_U32(DENALI_VREG_RW_UPCALL_ENTRY) = (uint32_t)(uintptr_t)__ilwaco_upcall;
    set_interrupts(1);
}

void __ilwaco_thread_start(void) {
    struct ilwaco_thread *self = current;
    thread_exit(self->fn(self->arg));
}

thread_t *thread_create(thread_fn fn, void *arg, size_t stack_size) {
    if (stack_size == 0) stack_size = THREAD_DEFAULT_STACK;
    if (stack_size < 1024) stack_size = 1024;
    stack_size = (stack_size + 15) & ~(size_t)15;
    struct ilwaco_thread *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->stack = malloc(STACK_GUARD + stack_size);
    if (!t->stack) {
        free(t);
        return NULL;
    }
    for (uint32_t i = 0; i < STACK_GUARD / 4; i++) ((uint32_t *)t->stack)[i] = STACK_CANARY;
    t->id = next_id++;
    t->fn = fn;
    t->arg = arg;
    /* Initial frame popped by __ilwaco_switch: edi esi ebx ebp, then "return" to the trampoline,
     * which then calls with esp 16-byte aligned. */
    uint32_t top = ((uint32_t)(uintptr_t)t->stack + STACK_GUARD + stack_size) & ~15u;
    uint32_t *sp = (uint32_t *)(uintptr_t)(top - 16);
    *--sp = (uint32_t)(uintptr_t)__ilwaco_thread_trampoline;
    *--sp = 0; /* ebp */
    *--sp = 0; /* ebx */
    *--sp = 0; /* esi */
    *--sp = 0; /* edi */
    t->esp = (uint32_t)(uintptr_t)sp;
    live_threads++;
    make_runnable(t);
    return t;
}

thread_t *thread_self(void) { return current; }
int thread_id(const thread_t *t) { return t->id; }
int thread_count(void) { return live_threads; }

/* Mark t ended; returns nothing; t must not be on any queue. */
static void finish(struct ilwaco_thread *t, void *value) {
    t->retval = value;
    t->state = T_EXITED;
    live_threads--;
    if (t == &main_thread) {
        main_exited = 1;
        main_status = (int)(intptr_t)value;
    }
    if (t->joiner) {
        t->joiner->joining = NULL;
        make_runnable(t->joiner);
        t->joiner = NULL;
    }
    if (t->stack) {
        t->zombie_next = zombies;
        zombies = t;
    }
}

void thread_exit(void *value) {
    finish(current, value);
    if (live_threads == 0) exit(main_exited ? main_status : 0);
    schedule();
    for (;;) __asm__ volatile("hlt"); /* unreachable: nobody switches back to an exited thread */
}

void *thread_join(thread_t *t) {
    if (t == current) return THREAD_KILLED;
    if (t->state != T_EXITED) {
        t->joiner = current;
        current->joining = t;
        block();
    }
    void *v = t->retval;
    if (t != &main_thread) {
        if (t->stack) reap();
        if (!t->stack) free(t);
    }
    return v;
}

void thread_yield(void) {
    make_runnable(current);
    schedule();
}

int thread_kill(thread_t *t) {
    if (t == current) thread_exit(THREAD_KILLED);
    if (t->state == T_EXITED) return -1;
    if (t->net_wait) {
        t->net_wait = 0;
        net_waiters--;
    }
    q_unlink(t);
    sleep_remove(t);
    if (t->joining) {
        t->joining->joiner = NULL;
        t->joining = NULL;
    }
    finish(t, THREAD_KILLED);
    reap();
    return 0;
}

void thread_sleep_until(uint64_t deadline) {
    sleep_insert(current, deadline);
    block();
}

void thread_sleep_us(uint64_t us) {
    if (us == 0) {
        thread_yield();
        return;
    }
    thread_sleep_until(ilwaco_ticks() + us);
}

void thread_get_stats(struct thread_stats *out) { *out = stats; }

/* ---- mutexes ---- */

static __attribute__((noreturn)) void misuse(const char *what) {
    __ilwaco_stdio_flush_all();
    __ilwaco_fatal_write("ilwaco: ");
    __ilwaco_fatal_write(what);
    __ilwaco_fatal_write("\n");
    abort();
}

void mutex_init(mutex_t *m) { m->owner = m->wait_head = m->wait_tail = NULL; }

void mutex_lock(mutex_t *m) {
    if (!m->owner) {
        m->owner = current;
        return;
    }
    if (m->owner == current) misuse("mutex_lock: mutex already held by the calling thread");
    q_push(&m->wait_head, &m->wait_tail, current);
    block();
    /* mutex_unlock handed the mutex to us. */
}

int mutex_trylock(mutex_t *m) {
    if (m->owner) return -1;
    m->owner = current;
    return 0;
}

void mutex_unlock(mutex_t *m) {
    if (m->owner != current) misuse("mutex_unlock: mutex not held by the calling thread");
    struct ilwaco_thread *t = q_pop(&m->wait_head, &m->wait_tail);
    m->owner = t;
    if (t) make_runnable(t);
}

/* ---- condition variables ---- */

void cond_init(cond_t *c) { c->wait_head = c->wait_tail = NULL; }

void cond_wait(cond_t *c, mutex_t *m) {
    q_push(&c->wait_head, &c->wait_tail, current);
    mutex_unlock(m);
    block();
    mutex_lock(m);
}

int cond_timedwait(cond_t *c, mutex_t *m, uint64_t timeout_us) {
    current->timed_out = 0;
    q_push(&c->wait_head, &c->wait_tail, current);
    sleep_insert(current, ilwaco_ticks() + timeout_us);
    mutex_unlock(m);
    block();
    int r = current->timed_out ? THREAD_TIMEDOUT : 0;
    current->timed_out = 0;
    mutex_lock(m);
    return r;
}

static void wake_waiter(struct ilwaco_thread *t) {
    sleep_remove(t);
    t->timed_out = 0;
    make_runnable(t);
}

void cond_signal(cond_t *c) {
    struct ilwaco_thread *t = q_pop(&c->wait_head, &c->wait_tail);
    if (t) wake_waiter(t);
}

void cond_broadcast(cond_t *c) {
    struct ilwaco_thread *t;
    while ((t = q_pop(&c->wait_head, &c->wait_tail))) wake_waiter(t);
}

/* ---- wait queues for the network stack ---- */

int __ilwaco_waitq_sleep(struct ilwaco_waitq *q, uint64_t deadline) {
    current->timed_out = 0;
    q_push(&q->head, &q->tail, current);
    if (deadline != ILWACO_NO_DEADLINE) sleep_insert(current, deadline);
    current->net_wait = 1;
    net_waiters++;
    block();
    if (current->net_wait) {
        current->net_wait = 0;
        net_waiters--;
    }
    int r = current->timed_out ? THREAD_TIMEDOUT : 0;
    current->timed_out = 0;
    return r;
}

void __ilwaco_waitq_wake_all(struct ilwaco_waitq *q) {
    struct ilwaco_thread *t;
    while ((t = q_pop(&q->head, &q->tail))) wake_waiter(t);
}
