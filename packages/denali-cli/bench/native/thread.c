/* ilwaco/thread.h over POSIX threads, for native builds of Ilwaco services (see thread.h). */
#include <ilwaco/thread.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

struct ilwaco_thread {
    pthread_t tid;
    thread_fn fn;
    void *arg;
    int id;
};

static pthread_mutex_t registry = PTHREAD_MUTEX_INITIALIZER;
static int next_id;
static int live = 1;
static __thread thread_t *current;

static void *trampoline(void *p) {
    thread_t *t = p;
    current = t;
    void *v = t->fn(t->arg);
    thread_exit(v);
}

thread_t *thread_create(thread_fn fn, void *arg, size_t stack_size) {
    thread_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&registry);
    t->id = next_id++;
    live++;
    pthread_mutex_unlock(&registry);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (stack_size == 0) stack_size = THREAD_DEFAULT_STACK;
    if (stack_size < PTHREAD_STACK_MIN) stack_size = PTHREAD_STACK_MIN;
    /* glibc's own frames need room too: never go below 256 KiB. */
    if (stack_size < 256 * 1024) stack_size = 256 * 1024;
    pthread_attr_setstacksize(&attr, stack_size);
    int rc = pthread_create(&t->tid, &attr, trampoline, t);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_lock(&registry);
        live--;
        pthread_mutex_unlock(&registry);
        free(t);
        return NULL;
    }
    return t;
}

thread_t *thread_self(void) {
    if (!current) {
        current = calloc(1, sizeof *current);
        if (current) {
            current->tid = pthread_self();
            pthread_mutex_lock(&registry);
            current->id = next_id++;
            pthread_mutex_unlock(&registry);
        }
    }
    return current;
}

int thread_id(const thread_t *t) { return t ? t->id : -1; }

void thread_exit(void *value) {
    pthread_mutex_lock(&registry);
    live--;
    pthread_mutex_unlock(&registry);
    pthread_exit(value);
}

void *thread_join(thread_t *t) {
    void *v = THREAD_KILLED;
    if (!t || t == current) return THREAD_KILLED;
    pthread_join(t->tid, &v);
    free(t);
    return v;
}

void thread_yield(void) { sched_yield(); }

void thread_sleep_us(uint64_t us) {
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

void mutex_init(mutex_t *m) { pthread_mutex_init(&m->m, NULL); }
void mutex_lock(mutex_t *m) { pthread_mutex_lock(&m->m); }
int mutex_trylock(mutex_t *m) { return pthread_mutex_trylock(&m->m) == 0 ? 0 : -1; }
void mutex_unlock(mutex_t *m) { pthread_mutex_unlock(&m->m); }

void cond_init(cond_t *c) { pthread_cond_init(&c->c, NULL); }
void cond_wait(cond_t *c, mutex_t *m) { pthread_cond_wait(&c->c, &m->m); }
int cond_timedwait(cond_t *c, mutex_t *m, uint64_t timeout_us) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (timeout_us % 1000000) * 1000;
    ts.tv_sec += (time_t)(timeout_us / 1000000 + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    return pthread_cond_timedwait(&c->c, &m->m, &ts) == ETIMEDOUT ? THREAD_TIMEDOUT : 0;
}
void cond_signal(cond_t *c) { pthread_cond_signal(&c->c); }
void cond_broadcast(cond_t *c) { pthread_cond_broadcast(&c->c); }

int thread_count(void) {
    pthread_mutex_lock(&registry);
    int n = live;
    pthread_mutex_unlock(&registry);
    return n;
}
