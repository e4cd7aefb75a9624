/* time.h: wall-clock time from the WALLCLOCK virtual register (µs since the Unix epoch) and
 * CPU-less clock() from CLOCK (ticks since boot). See ilwaco/ilwaco.h for ticks. */
#ifndef ILWACO_TIME_H
#define ILWACO_TIME_H
#include <stddef.h>
#include <stdint.h>
typedef int64_t time_t;
typedef long clock_t;
/** clock() units per second: ticks are microseconds. */
#define CLOCKS_PER_SEC 1000000L
struct timespec { time_t tv_sec; long tv_nsec; };
struct timeval { time_t tv_sec; long tv_usec; };
/** Seconds since the epoch; also stored in *t when t is not NULL. */
time_t time(time_t *t);
/** Ticks since boot, truncated to clock_t (wraps after ~35 minutes). */
clock_t clock(void);
/** Fills tv from WALLCLOCK; tz is ignored. Returns 0. */
int gettimeofday(struct timeval *tv, void *tz);
/** Sleep the calling thread (other threads run). Return 0. */
int usleep(uint32_t us);
unsigned sleep(unsigned seconds);
int nanosleep(const struct timespec *req, struct timespec *rem);
#endif
