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
#endif
