/* Private declarations shared by the Ilwaco library's translation units. */
#ifndef ILWACO_INTERNAL_H
#define ILWACO_INTERNAL_H
#include <ilwaco/ilwaco.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/** Sink for the formatter: emit(ctx, bytes, n). */
typedef void (*ilwaco_emit_fn)(void *ctx, const char *s, size_t n);
/** The printf engine: formats into `emit`; returns the number of bytes produced. */
int __ilwaco_vformat(ilwaco_emit_fn emit, void *ctx, const char *fmt, va_list ap);

/** Called once by crt0 before main: heap from the virtual registers. */
void __ilwaco_malloc_init(void);
/** Called once by crt0 before main: main thread, upcall handler, interrupts on. */
void __ilwaco_thread_init(void);
/** Flush stdout (and anything else buffered) before exit. */
void __ilwaco_stdio_flush_all(void);
/**
 * Block the calling thread until console input may be available (IRQ_CONSOLE),
 * letting other threads run and idling when none can.
 */
void __ilwaco_wait_console(void);

/** Upcall entry point (lib/upcall.S). */
void __ilwaco_upcall(void);
/** Interrupt bits the upcall handler moved out of PENDING. */
extern volatile uint32_t __ilwaco_irq_bits;

/** Context switch (lib/switch.S): save callee-saved registers and esp into *save, load `next`. */
void __ilwaco_switch(uint32_t *save_esp, uint32_t next_esp);
/** First code run by a new thread (lib/switch.S) */
void __ilwaco_thread_trampoline(void);

/** Write a string straight to the console (no buffering), for fatal messages. */
void __ilwaco_fatal_write(const char *s);

/* ---- scheduler hooks for the network stack (lib/net) ---- */

/** A FIFO of threads sleeping until an event (socket readiness): lib/net's wait queues. */
struct ilwaco_waitq {
    struct ilwaco_thread *head, *tail;
};
/** No deadline for __ilwaco_waitq_sleep. */
#define ILWACO_NO_DEADLINE UINT64_C(0xffffffffffffffff)
/**
 * Sleep the calling thread on `q` until __ilwaco_waitq_wake_all(q) or CLOCK reaches
 * `deadline` (ticks; ILWACO_NO_DEADLINE: none). Returns 0 when woken, THREAD_TIMEDOUT at the
 * deadline. While threads sleep here and a network hook is installed, the scheduler idles
 * instead of declaring a deadlock: a frame may wake them.
 */
int __ilwaco_waitq_sleep(struct ilwaco_waitq *q, uint64_t deadline);
/** Make every thread sleeping on `q` runnable (they run after the caller blocks or yields). */
void __ilwaco_waitq_wake_all(struct ilwaco_waitq *q);
/** True when some thread sleeps on `q`. */
static inline int __ilwaco_waitq_busy(const struct ilwaco_waitq *q) { return q->head != 0; }

/**
 * Installed by the network stack when it starts. The scheduler calls `poll` each time it looks
 * for work (interrupts disabled; must not block or switch threads) with the interrupt bits it
 * collected, so NET_RX frames and expired network timers are handled in thread context, and
 * folds `next_deadline` (earliest network timer in ticks, ILWACO_NO_DEADLINE for none) into
 * the IDLE timeout.
 */
struct ilwaco_net_hooks {
    void (*poll)(uint32_t irq_bits);
    uint64_t (*next_deadline)(void);
};
extern const struct ilwaco_net_hooks *__ilwaco_net_hooks;
#endif
