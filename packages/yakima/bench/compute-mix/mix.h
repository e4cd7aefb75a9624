#ifndef MIX_H
#define MIX_H
#include <stdint.h>
/* A CoreMark-like compute mix: linked-list search and reversal, integer matrix multiply, a
 * state machine over text and CRC-16. Returns a checksum so the work cannot be optimized away. */
uint32_t compute_mix(uint32_t iterations);
#endif
