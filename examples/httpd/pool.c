/* The worker pool and its accept hand-off queue (pool.h). */
#include "pool.h"
#include "conn.h"
#include <ilwaco/thread.h>
#include <stdlib.h>

/*
 * Idle workers wait on a stack, each on its own condition variable, and a new connection wakes
 * the one that went idle last (as Apache's worker MPM does with its idle-worker stack). Its
 * stack and buffers are the pages the VM touched most recently; with one shared condition
 * variable the workers took turns, so a VM serving one request at a time touched every
 * worker's stack and buffers, and a swapped-out httpd VM carried all of them (HotOS paper
 * 3.2: swapping moves what a VM touched).
 */
struct idler {
    cond_t wake;
    int woken; /* set by pool_submit when it pops this worker */
};

static mutex_t lock = MUTEX_INITIALIZER;
static cond_t nonfull = COND_INITIALIZER;
static int queue[POOL_QUEUE];
static unsigned head, count;
static struct idler *idle[POOL_MAX_THREADS]; /* in .bss, whose pages a request touches anyway; on the heap it dirtied a page of its own */
static int n_idle;

static int take(struct idler *me) {
    mutex_lock(&lock);
    while (count == 0) {
        me->woken = 0;
        idle[n_idle++] = me;
        while (!me->woken) cond_wait(&me->wake, &lock);
    }
    int fd = queue[head];
    head = (head + 1) % POOL_QUEUE;
    count--;
    cond_signal(&nonfull);
    mutex_unlock(&lock);
    return fd;
}

/* Whether accepted connections wait in the queue for a worker. */
static int others_waiting(void) {
    mutex_lock(&lock);
    int waiting = count > 0;
    mutex_unlock(&lock);
    return waiting;
}

struct worker_state {
    struct idler idler;
    struct conn_buffers buffers;
};

static void *worker(void *arg) {
    struct worker_state *w = arg;
    for (;;) conn_serve(take(&w->idler), &w->buffers, others_waiting);
    return NULL;
}

void pool_submit(int fd) {
    mutex_lock(&lock);
    while (count == POOL_QUEUE) cond_wait(&nonfull, &lock);
    queue[(head + count) % POOL_QUEUE] = fd;
    count++;
    if (n_idle > 0) {
        /* A woken worker that finds the queue empty (a busy one took the fd) goes back on the stack. */
        struct idler *w = idle[--n_idle];
        w->woken = 1;
        cond_signal(&w->wake);
    }
    mutex_unlock(&lock);
}

int pool_start(int threads) {
    if (threads > POOL_MAX_THREADS) return -1;
    for (int i = 0; i < threads; i++) {
        struct worker_state *w = malloc(sizeof *w);
        if (!w) return -1;
        cond_init(&w->idler.wake);
        w->idler.woken = 0;
        if (!thread_create(worker, w, POOL_STACK)) return -1;
    }
    return 0;
}
