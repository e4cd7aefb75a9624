/*
 * Native (Linux, glibc) stand-in for Ilwaco's ilwaco/thread.h, over POSIX threads, so that
 * service sources such as examples/httpd build unchanged for the paper's Linux comparison
 * (section 4.2.2: "a Linux library implementing Ilwaco's system call API").
 *
 * Same names and meanings as packages/ilwaco-sdk/include/ilwaco/thread.h, but threads are
 * preemptive (real pthread mutexes and condition variables), which the Ilwaco semantics allow
 * for correctly locked code. Not provided: thread_kill, thread_sleep_until, thread_get_stats.
 * Times are microseconds, stack sizes bytes.
 */
#ifndef ILWACO_THREAD_H
#define ILWACO_THREAD_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ilwaco_thread thread_t;
typedef void *(*thread_fn)(void *arg);

#define THREAD_DEFAULT_STACK (64 * 1024)
#define THREAD_KILLED ((void *)-1)
#define THREAD_TIMEDOUT 110

/** Start fn(arg) on a new pthread with at least `stack_size` bytes of stack (0: default). NULL on failure. */
thread_t *thread_create(thread_fn fn, void *arg, size_t stack_size);
/** The calling thread (created on first use for threads not made by thread_create). */
thread_t *thread_self(void);
/** 0 for the first thread that asked, then 1, 2, ... in creation order. */
int thread_id(const thread_t *t);
/** End the calling thread with `value`. */
__attribute__((noreturn)) void thread_exit(void *value);
/** Wait for `t` to end, free it, and return its exit value. */
void *thread_join(thread_t *t);
/** sched_yield(). */
void thread_yield(void);
/** Sleep for `us` microseconds. */
void thread_sleep_us(uint64_t us);

typedef struct mutex {
    pthread_mutex_t m;
} mutex_t;
#define MUTEX_INITIALIZER {PTHREAD_MUTEX_INITIALIZER}
void mutex_init(mutex_t *m);
void mutex_lock(mutex_t *m);
/** 0 when acquired, -1 if held. */
int mutex_trylock(mutex_t *m);
void mutex_unlock(mutex_t *m);

typedef struct cond {
    pthread_cond_t c;
} cond_t;
#define COND_INITIALIZER {PTHREAD_COND_INITIALIZER}
void cond_init(cond_t *c);
void cond_wait(cond_t *c, mutex_t *m);
/** 0 when signalled, THREAD_TIMEDOUT after `timeout_us` microseconds. */
int cond_timedwait(cond_t *c, mutex_t *m, uint64_t timeout_us);
void cond_signal(cond_t *c);
void cond_broadcast(cond_t *c);

/** Threads made by thread_create that have not ended, plus 1 for the main thread. */
int thread_count(void);

#ifdef __cplusplus
}
#endif
#endif
