/*
 * ilwaco/thread.h: Ilwaco's non-preemptive threads (paper section 3.3): create ("fork"),
 * exit, join, yield, kill, mutexes and condition variables, timed sleeps.
 *
 * Threads switch only when the running thread blocks, sleeps, yields or exits. Sleeping
 * threads sit in a list ordered by wake-up time; when no thread is runnable, the scheduler
 * passes the earliest deadline to the IDLE hypercall (paper 3.1.1/3.3), or idles forever if
 * only console input is awaited, so an idle VM costs the host nothing.
 * If every thread is blocked with nothing that could wake it, the VM prints
 * "ilwaco: deadlock: ..." and exits with status ILWACO_EXIT_DEADLOCK (125).
 * All times are microseconds (= ticks). Stack sizes are bytes.
 */
#ifndef ILWACO_THREAD_H
#define ILWACO_THREAD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ilwaco_thread thread_t;
typedef void *(*thread_fn)(void *arg);

/** Default stack size for thread_create(..., 0): 64 KiB. */
#define THREAD_DEFAULT_STACK (64 * 1024)
/** Value thread_join reports for a thread ended by thread_kill. */
#define THREAD_KILLED ((void *)-1)
/** Returned by cond_timedwait when the timeout expired. Same as ETIMEDOUT. */
#define THREAD_TIMEDOUT 110

/**
 * Create a runnable thread running fn(arg) on a fresh stack of `stack_size` bytes
 * (0: THREAD_DEFAULT_STACK; rounded up to 16), plus a 1 KiB guard area below it that is
 * checked for overflow whenever the thread switches out (overflow: message, exit 134).
 * Stacks smaller than 1 KiB are raised to 1 KiB. The new thread first runs when the caller
 * blocks or yields. Returns NULL when memory is exhausted.
 */
thread_t *thread_create(thread_fn fn, void *arg, size_t stack_size);
/** The calling thread. */
thread_t *thread_self(void);
/** Small integer id: 0 for the main thread, then 1, 2, ... in creation order. */
int thread_id(const thread_t *t);
/**
 * End the calling thread with `value` (what thread_join returns). Returning from the thread
 * function does the same. When the main thread exits this way, the VM keeps running until
 * every thread has ended, then exits with status (int)value. Never returns.
 */
__attribute__((noreturn)) void thread_exit(void *value);
/**
 * Wait for `t` to end and return its exit value (THREAD_KILLED if it was killed), then free
 * it. Each thread may be joined once; joining yourself returns THREAD_KILLED at once.
 */
void *thread_join(thread_t *t);
/** Let every other runnable thread run once, then continue. */
void thread_yield(void);
/**
 * End thread `t` (paper 3.3 "kill"): it is removed from whatever it waits on and never runs
 * again; joiners get THREAD_KILLED. Mutexes it holds stay locked. Killing yourself is
 * thread_exit(THREAD_KILLED). Returns 0, or -1 if `t` has already ended.
 */
int thread_kill(thread_t *t);
/** Sleep the calling thread for `us` microseconds (0: same as thread_yield). */
void thread_sleep_us(uint64_t us);
/** Sleep until CLOCK reaches `deadline` ticks since boot (see ilwaco_ticks). */
void thread_sleep_until(uint64_t deadline);

/** A mutex; initialize with MUTEX_INITIALIZER or mutex_init. Not recursive. */
typedef struct mutex {
    thread_t *owner;
    thread_t *wait_head, *wait_tail;
} mutex_t;
#define MUTEX_INITIALIZER {0, 0, 0}
void mutex_init(mutex_t *m);
/** Acquire `m`, blocking the calling thread while another holds it (FIFO hand-off). */
void mutex_lock(mutex_t *m);
/** Acquire `m` if free: returns 0 on success, -1 if it is held. */
int mutex_trylock(mutex_t *m);
/** Release `m` (must be held by the caller); the longest waiter gets it. */
void mutex_unlock(mutex_t *m);

/** A condition variable; initialize with COND_INITIALIZER or cond_init. */
typedef struct cond {
    thread_t *wait_head, *wait_tail;
} cond_t;
#define COND_INITIALIZER {0, 0}
void cond_init(cond_t *c);
/** Atomically release `m` and wait for a signal; `m` is held again on return. */
void cond_wait(cond_t *c, mutex_t *m);
/**
 * Like cond_wait but gives up after `timeout_us` microseconds: returns 0 when signalled,
 * THREAD_TIMEDOUT when the time ran out. `m` is held again on return either way.
 */
int cond_timedwait(cond_t *c, mutex_t *m, uint64_t timeout_us);
/** Wake the longest-waiting thread, if any. */
void cond_signal(cond_t *c);
/** Wake every waiting thread. */
void cond_broadcast(cond_t *c);

/** Number of threads that have not ended (including the caller). */
int thread_count(void);

/** Scheduler statistics: how the VM spent its waiting (for tests and benchmarks). */
struct thread_stats {
    uint32_t context_switches; /* switches between threads */
    uint32_t idle_calls;       /* IDLE hypercalls issued */
    uint64_t idle_ticks;       /* ticks spent inside IDLE hypercalls (by CLOCK) */
};
void thread_get_stats(struct thread_stats *out);

#ifdef __cplusplus
}
#endif
#endif
