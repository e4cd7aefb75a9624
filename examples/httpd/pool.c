/* The worker pool and its accept hand-off queue (pool.h). */
#include "pool.h"
#include "conn.h"
#include <ilwaco/thread.h>
#include <stdlib.h>

static mutex_t lock = MUTEX_INITIALIZER;
static cond_t nonempty = COND_INITIALIZER;
static cond_t nonfull = COND_INITIALIZER;
static int queue[POOL_QUEUE];
static unsigned head, count;

static int take(void) {
    mutex_lock(&lock);
    while (count == 0) cond_wait(&nonempty, &lock);
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

static void *worker(void *arg) {
    struct conn_buffers *b = arg;
    for (;;) conn_serve(take(), b, others_waiting);
    return NULL;
}

void pool_submit(int fd) {
    mutex_lock(&lock);
    while (count == POOL_QUEUE) cond_wait(&nonfull, &lock);
    queue[(head + count) % POOL_QUEUE] = fd;
    count++;
    cond_signal(&nonempty);
    mutex_unlock(&lock);
}

int pool_start(int threads) {
    for (int i = 0; i < threads; i++) {
        struct conn_buffers *b = malloc(sizeof *b);
        if (!b || !thread_create(worker, b, POOL_STACK)) return -1;
    }
    return 0;
}
