/*
 * ilwaco/ilwaco.h: the Ilwaco guest OS's interface to the Denali virtual hardware
 * (paper section 3.3: a library OS linked into each service image).
 *
 * Time is measured in ticks: 1 tick = 1 microsecond (DENALI_TICK_RATE). The clock is the
 * CLOCK virtual register (u64 ticks since the VM booted, paper 3.1.1), which Yakima updates
 * on every VM entry.
 */
#ifndef ILWACO_ILWACO_H
#define ILWACO_ILWACO_H

#include <denali/abi.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Exit status used when every thread is blocked forever (deadlock). */
#define ILWACO_EXIT_DEADLOCK 125

/**
 * Issue hypercall `nr` (a DENALI_HYPERCALL_* number) with argument block `block`:
 * `outl %eax, %dx` with dx = DENALI_HYPERCALL_PORT_BASE + nr and eax = the block's address.
 * Yakima writes results into the block before the guest resumes.
 */
static inline void denali_hypercall(uint32_t nr, void *block) {
    __asm__ volatile("outl %%eax, %%dx" : : "a"(block), "d"(DENALI_HYPERCALL_PORT_BASE + nr) : "memory");
}

/** Ticks (µs) since the VM booted, from the CLOCK virtual register (tear-free read). */
uint64_t ilwaco_ticks(void);
/** Microseconds since the Unix epoch, from the WALLCLOCK virtual register. */
uint64_t ilwaco_wallclock_us(void);
/**
 * Yield the physical CPU (IDLE hypercall, paper 3.1.1) for at most `timeout` ticks, or until
 * any virtual interrupt arrives; returns at once if one is already pending.
 * `ILWACO_IDLE_FOREVER` waits for an interrupt only. Low level: threads use the scheduler.
 */
void ilwaco_idle(uint64_t timeout);
#define ILWACO_IDLE_FOREVER UINT64_C(0xffffffffffffffff)

/**
 * Sleep the calling thread for `us` microseconds. Other threads keep running; when none is
 * runnable the VM idles (costs the host nothing). Same as thread_sleep_us.
 */
void ilwaco_usleep(uint64_t us);

/** Guest memory size in bytes (MEMORY_SIZE read-only virtual register). */
uint32_t ilwaco_memory_size(void);
/** This VM's id, unique within one Yakima instance. */
uint32_t ilwaco_vm_id(void);

/**
 * Write `len` bytes to the console (CONSOLE_WRITE hypercall), unbuffered; loops until all
 * bytes are accepted. Returns `len`. stdio's stdout/stderr go through this.
 */
size_t ilwaco_console_write(const void *buf, size_t len);
/**
 * Read up to `len` waiting console bytes without blocking (CONSOLE_READ hypercall).
 * Returns the number of bytes read (0 when none is waiting); sets *eof to 1 once the
 * console input has ended (eof may be NULL).
 */
size_t ilwaco_console_read(void *buf, size_t len, int *eof);

/**
 * Read interrupts noted since the last call and clear them: returns a DENALI_IRQ_* bitmap.
 * Collects both the PENDING virtual register and bits the upcall handler moved aside.
 */
uint32_t ilwaco_take_interrupts(void);
/** Number of upcalls (virtual interrupt deliveries) since boot. */
extern volatile uint32_t ilwaco_upcall_count;

#ifdef __cplusplus
}
#endif
#endif
