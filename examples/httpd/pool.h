/*
 * pool.h: the pre-allocated worker pool (paper 4.2.2: "a simple multi-threaded server that
 * dispatches incoming requests to a pre-allocated thread pool"). The accepting thread hands
 * connected sockets to the workers through a bounded queue guarded by a mutex (ilwaco/thread.h);
 * the worker that went idle last takes the next one (pool.c says why).
 */
#ifndef HTTPD_POOL_H
#define HTTPD_POOL_H

/** Connections accepted but not yet taken by a worker, at most. */
#define POOL_QUEUE 32
/** Most worker threads. */
#define POOL_MAX_THREADS 256
/** Stack of each worker thread, in bytes. */
#define POOL_STACK (64 * 1024)

/**
 * Start `threads` workers, each with its own connection buffers. Returns 0, or -1 if memory
 * for a thread or its buffers ran out or `threads` exceeds POOL_MAX_THREADS.
 */
int pool_start(int threads);

/** Queue connected socket `fd` for a worker, sleeping while the queue is full. */
void pool_submit(int fd);

#endif
