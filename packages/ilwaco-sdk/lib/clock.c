/* Virtual clock registers, the IDLE hypercall and time.h. */
#include "internal.h"
#include <ilwaco/thread.h>
#include <time.h>

/* Read a u64 virtual register that Yakima may update between our two 32-bit loads. */
static uint64_t read_u64(uint32_t off) {
    for (;;) {
        uint32_t hi = DENALI_VREG_RW_U32(off + 4);
        uint32_t lo = DENALI_VREG_RW_U32(off);
        if (DENALI_VREG_RW_U32(off + 4) == hi) return ((uint64_t)hi << 32) | lo;
    }
}

uint64_t ilwaco_ticks(void) { return read_u64(DENALI_VREG_RW_CLOCK); }
uint64_t ilwaco_wallclock_us(void) { return read_u64(DENALI_VREG_RW_WALLCLOCK); }

void ilwaco_idle(uint64_t timeout) {
    struct denali_idle_args a;
    if (timeout == ILWACO_IDLE_FOREVER) {
        a.timeout_lo = DENALI_IDLE_FOREVER;
        a.timeout_hi = DENALI_IDLE_FOREVER;
    } else {
        /* Never pass the reserved "forever" pattern as a finite timeout. */
        if (timeout >= UINT64_C(0xffffffffffffffff)) timeout = UINT64_C(0xfffffffffffffffe);
        a.timeout_lo = (uint32_t)timeout;
        a.timeout_hi = (uint32_t)(timeout >> 32);
    }
    denali_hypercall(DENALI_HYPERCALL_IDLE, &a);
}

uint32_t ilwaco_memory_size(void) { return DENALI_VREG_RO_U32(DENALI_VREG_RO_MEMORY_SIZE); }
uint32_t ilwaco_vm_id(void) { return DENALI_VREG_RO_U32(DENALI_VREG_RO_VM_ID); }

void ilwaco_usleep(uint64_t us) { thread_sleep_us(us); }

time_t time(time_t *t) {
    time_t s = (time_t)(ilwaco_wallclock_us() / 1000000u);
    if (t) *t = s;
    return s;
}

clock_t clock(void) { return (clock_t)ilwaco_ticks(); }

int gettimeofday(struct timeval *tv, void *tz) {
    (void)tz;
    uint64_t us = ilwaco_wallclock_us();
    tv->tv_sec = (time_t)(us / 1000000u);
    tv->tv_usec = (long)(us % 1000000u);
    return 0;
}

int usleep(uint32_t us) {
    thread_sleep_us(us);
    return 0;
}

unsigned sleep(unsigned seconds) {
    thread_sleep_us((uint64_t)seconds * 1000000u);
    return 0;
}

int nanosleep(const struct timespec *req, struct timespec *rem) {
    uint64_t us = (uint64_t)req->tv_sec * 1000000u + ((uint64_t)req->tv_nsec + 999) / 1000;
    thread_sleep_us(us);
    if (rem) {
        rem->tv_sec = 0;
        rem->tv_nsec = 0;
    }
    return 0;
}
