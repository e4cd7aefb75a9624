/*
 * Producer/consumer over a bounded buffer with Ilwaco's non-preemptive threads (paper 3.3):
 * mutex + condition variables, timed sleeps, a timed condition wait and thread_kill.
 * The producer makes items in bursts of 5 (sleeping 2 ms between bursts), the consumer takes
 * one every 3 ms, so the 4-slot buffer fills and the producer blocks on "not full" (threads
 * are non-preemptive: a burst runs until the producer blocks). Only the consumer and main
 * print, and every printed fact holds whatever the timing, so the output is deterministic. While every thread sleeps the scheduler issues the IDLE hypercall
 * (paper 3.1.1) instead of spinning; main reports that it did.
 */
#include <ilwaco/ilwaco.h>
#include <ilwaco/thread.h>
#include <stdio.h>

#define ITEMS 20
#define SLOTS 4

static int buffer[SLOTS];
static int head, count;
static mutex_t lock = MUTEX_INITIALIZER;
static cond_t not_full = COND_INITIALIZER, not_empty = COND_INITIALIZER, finished = COND_INITIALIZER;
static int done;
static int max_fill;

static void *producer(void *arg) {
    (void)arg;
    for (int i = 1; i <= ITEMS; i++) {
        mutex_lock(&lock);
        while (count == SLOTS) cond_wait(&not_full, &lock);
        buffer[(head + count) % SLOTS] = i * i;
        count++;
        if (count > max_fill) max_fill = count;
        cond_signal(&not_empty);
        mutex_unlock(&lock);
        if (i % 5 == 0) thread_sleep_us(2000);
    }
    return (void *)0;
}

static void *consumer(void *arg) {
    (void)arg;
    int sum = 0;
    for (int i = 1; i <= ITEMS; i++) {
        mutex_lock(&lock);
        while (count == 0) cond_wait(&not_empty, &lock);
        int v = buffer[head];
        head = (head + 1) % SLOTS;
        count--;
        cond_signal(&not_full);
        mutex_unlock(&lock);
        printf("consumer: item %2d = %3d\n", i, v);
        sum += v;
        thread_sleep_us(3000);
    }
    mutex_lock(&lock);
    done = 1;
    cond_broadcast(&finished);
    mutex_unlock(&lock);
    return (void *)(long)sum;
}

/* Waits for "finished" in 10 ms slices: exercises cond_timedwait's timeout path. */
static void *watchdog(void *arg) {
    (void)arg;
    long timeouts = 0;
    mutex_lock(&lock);
    while (!done)
        if (cond_timedwait(&finished, &lock, 10000) == THREAD_TIMEDOUT) timeouts++;
    mutex_unlock(&lock);
    return (void *)timeouts;
}

static void *sleeper(void *arg) {
    (void)arg;
    thread_sleep_us(3600u * 1000000u); /* an hour: only thread_kill ends it */
    return (void *)0;
}

int main(void) {
    uint64_t start = ilwaco_ticks();
    thread_t *s = thread_create(sleeper, NULL, 0);
    thread_t *p = thread_create(producer, NULL, 16 * 1024);
    thread_t *c = thread_create(consumer, NULL, 16 * 1024);
    thread_t *w = thread_create(watchdog, NULL, 0);
    long sum = (long)thread_join(c);
    thread_join(p);
    long timeouts = (long)thread_join(w);
    thread_kill(s);
    int killed = thread_join(s) == THREAD_KILLED;
    uint64_t elapsed = ilwaco_ticks() - start;
    struct thread_stats st;
    thread_get_stats(&st);

    printf("sum of squares 1..%d = %ld\n", ITEMS, sum);
    printf("buffer filled up: %s\n", max_fill == SLOTS ? "yes" : "no");
    printf("watchdog timed out at least once: %s\n", timeouts > 0 ? "yes" : "no");
    printf("sleeper killed: %s\n", killed ? "yes" : "no");
    printf("took at least %d ms: %s\n", ITEMS * 3, elapsed >= ITEMS * 3000u ? "yes" : "no");
    printf("idled instead of spinning: %s\n", st.idle_calls > 0 && st.idle_ticks > 0 ? "yes" : "no");
    printf("threads left: %d\n", thread_count());
    return 0;
}
