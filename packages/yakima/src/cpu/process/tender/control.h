/*
 * The control page shared by Yakima and one tender: the only channel between them besides the
 * guest memory itself. Layout mirrored in ../control-page.ts (keep the two in step).
 *
 * Ownership: `state` is the futex word. STATE_GUEST: the tender owns the page (guest code runs
 * or the tender is starting); STATE_POSTED: the tender has posted an exit and waits; Yakima
 * reads the exit fields, writes the reply fields and stores STATE_GUEST. Guest code can reach
 * this page (it can leave compatibility mode), so Yakima treats every field as hostile input.
 */
#ifndef TENDER_CONTROL_H
#define TENDER_CONTROL_H
#include <stdint.h>

#define CTL_STATE_GUEST 0u
#define CTL_STATE_POSTED 1u

/* Exit kinds (ctl.kind). */
#define EXIT_READY 1u   /* set up, waiting for the first registers */
#define EXIT_IO_OUT 2u  /* `out`: port, value, size; EIP already past the instruction */
#define EXIT_HALT 3u    /* `hlt`; EIP past it */
#define EXIT_QUANTUM 4u /* the CPU-time quantum (ITIMER_VIRTUAL) ran out */
#define EXIT_FAULT 5u   /* cause, trapno, err, addr, signo describe it */

/* Fault causes (ctl.cause), mapped to Yakima's FaultCause names in control-page.ts. */
#define CAUSE_MEMORY 1u
#define CAUSE_MEMORY_LIMIT 2u /* #GP/#SS on the segment limit: past the end of memory, address unknown */
#define CAUSE_INVALID_OPCODE 3u
#define CAUSE_DIVIDE_ERROR 4u
#define CAUSE_DEPRECATED 5u
#define CAUSE_GENERAL_PROTECTION 6u
#define CAUSE_LEFT_SANDBOX_MODE 7u /* CS or SS no longer the guest's LDT selectors */
#define CAUSE_FP_EXCEPTION 8u

struct control_page {
  volatile uint32_t state;
  uint32_t kind;
  uint32_t port;
  uint32_t value;
  uint32_t size;
  uint32_t cause;
  uint32_t trapno;
  uint32_t err;
  uint32_t addr;
  uint32_t signo;
  uint32_t exits;
  /* 1 while the tender sleeps in FUTEX_WAIT for the reply (Yakima skips the wake otherwise). */
  volatile uint32_t sleeping;
  /* 0x30: written by Yakima with every resume: 1 when the tender may spin on its next reply (no
   * other VM wants a CPU), 0 when it should sleep on the futex at once. */
  volatile uint32_t reply_spin;
  /* 0x34: exits on whose reply the tender spun (a count for statistics and tests). */
  uint32_t reply_spins;
  uint32_t pad0[2];
  /* 0x40: the registers at the exit (EAX ECX EDX EBX ESP EBP ESI EDI), EIP, EFLAGS. */
  uint32_t regs[8];
  uint32_t eip;
  uint32_t eflags;
  uint32_t pad1[6];
  /* 0x80: the registers to resume with (written by Yakima). */
  uint32_t reply_regs[8];
  uint32_t reply_eip;
  uint32_t reply_eflags;
  /* 0xa8: REPLY_LOAD_FPU: load reply_fpu into the guest's x87/SSE state on this resume (the
   * tender clears it). Set once by Yakima when a swapped-in VM's new tender first resumes. */
  uint32_t reply_flags;
  uint32_t pad2[21];
  /* 0x100: why set-up failed (NUL-terminated), for the tender's exit code 111. */
  char message[128];
  uint32_t pad3[32];
  /* 0x200: the guest's x87/SSE state at the exit (FXSAVE layout, Intel SDM vol. 1 10.5.1;
   * components in their initial configuration written out as such). */
  uint8_t fpu[512];
  /* 0x400: the x87/SSE state to resume with when reply_flags has REPLY_LOAD_FPU. */
  uint8_t reply_fpu[512];
};

#define REPLY_LOAD_FPU 1u

/* The offsets control-page.ts uses. */
_Static_assert(__builtin_offsetof(struct control_page, reply_spin) == 0x30, "reply_spin");
_Static_assert(__builtin_offsetof(struct control_page, reply_spins) == 0x34, "reply_spins");
_Static_assert(__builtin_offsetof(struct control_page, regs) == 0x40, "regs");
_Static_assert(__builtin_offsetof(struct control_page, reply_regs) == 0x80, "reply_regs");
_Static_assert(__builtin_offsetof(struct control_page, reply_flags) == 0xa8, "reply_flags");
_Static_assert(__builtin_offsetof(struct control_page, message) == 0x100, "message");
_Static_assert(__builtin_offsetof(struct control_page, fpu) == 0x200, "fpu");
_Static_assert(__builtin_offsetof(struct control_page, reply_fpu) == 0x400, "reply_fpu");
_Static_assert(sizeof(struct control_page) <= 4096, "one page");

#endif
