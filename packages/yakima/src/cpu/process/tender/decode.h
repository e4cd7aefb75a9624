/*
 * Just enough x86 decoding for the tender's signal handler to tell a hypercall (`out`), `hlt`
 * and the deprecated instructions from other #GP and #UD causes, so the process backend reports
 * the same fault causes as the emulator (table.ts's DEPRECATED list; Intel SDM vol. 2).
 * Runs in signal context: no libc, reads at most `n` bytes of `p`.
 */
#ifndef TENDER_DECODE_H
#define TENDER_DECODE_H
#include <stdint.h>

struct exit_info {
  uint32_t kind, port, value, size, cause, trapno, err, addr, signo, len, back;
};

static int is_prefix(uint8_t b) {
  return b == 0x66 || b == 0x67 || b == 0xf0 || b == 0xf2 || b == 0xf3 || b == 0x26 || b == 0x2e || b == 0x36 || b == 0x3e ||
         b == 0x64 || b == 0x65;
}

/* Skip prefixes; returns the index of the opcode (== n when there is none) and sets *opsize16. */
static uint32_t skip_prefixes(const uint8_t *p, uint32_t n, int *opsize16) {
  uint32_t i = 0;
  *opsize16 = 0;
  while (i < n && is_prefix(p[i])) {
    if (p[i] == 0x66) *opsize16 = 1;
    i++;
  }
  return i;
}

/* Privileged, I/O-port, segment or system-call instructions Denali deprecates (paper 3.1.2). */
static int deprecated_at(const uint8_t *p, uint32_t n, uint32_t i) {
  if (i >= n) return 0;
  uint8_t op = p[i];
  switch (op) {
  case 0x06: case 0x07: case 0x0e: case 0x16: case 0x17: case 0x1e: case 0x1f: /* push/pop segment */
  case 0x63: case 0x6c: case 0x6d: case 0x6e: case 0x6f:                       /* arpl, ins, outs */
  case 0x8c: case 0x8e: case 0x9a: case 0xca: case 0xcb: case 0xcc: case 0xcd: case 0xce: case 0xcf:
  case 0xe4: case 0xe5: case 0xec: case 0xed: case 0xea: case 0xf1: case 0xfa: case 0xfb: case 0xc4: case 0xc5:
    return 1;
  case 0xff:
    if (i + 1 < n) {
      uint8_t reg = (p[i + 1] >> 3) & 7;
      return reg == 3 || reg == 5; /* far call, far jmp */
    }
    return 0;
  case 0x0f:
    if (i + 1 >= n) return 0;
    switch (p[i + 1]) {
    case 0x00: case 0x01: case 0x02: case 0x03: case 0x05: case 0x06: case 0x07: case 0x08: case 0x09:
    case 0x20: case 0x21: case 0x22: case 0x23: case 0x30: case 0x32: case 0x33: case 0x34: case 0x35:
    case 0xa0: case 0xa1: case 0xa8: case 0xa9: case 0xaa: case 0xb2: case 0xb4: case 0xb5:
      return 1;
    }
    return 0;
  }
  return 0;
}

/* True when the instruction at p is one the emulator calls deprecated (used for #UD). */
static int decode_is_deprecated(const uint8_t *p, uint32_t n) {
  int o16;
  if (!p) return 0;
  return deprecated_at(p, n, skip_prefixes(p, n, &o16));
}

/*
 * Classify a #GP at CPL 3 from the instruction bytes: `out` (a hypercall: port from DX, value
 * from EAX), `hlt`, a deprecated instruction, a misaligned SSE operand, or otherwise an access
 * past the segment limit (past the end of guest memory).
 */
static void decode_gp(const uint8_t *p, uint32_t n, uint32_t edx, uint32_t eax, struct exit_info *x) {
  int o16;
  x->kind = EXIT_FAULT;
  x->cause = CAUSE_MEMORY_LIMIT;
  if (!p) return;
  uint32_t i = skip_prefixes(p, n, &o16);
  if (i >= n) return;
  uint8_t op = p[i];
  if (op == 0xee || op == 0xef) {
    x->kind = EXIT_IO_OUT;
    x->port = edx & 0xffff;
    x->size = op == 0xee ? 1 : o16 ? 2 : 4;
    x->value = x->size == 1 ? (eax & 0xff) : x->size == 2 ? (eax & 0xffff) : eax;
    x->len = i + 1;
    return;
  }
  if ((op == 0xe6 || op == 0xe7) && i + 1 < n) {
    x->kind = EXIT_IO_OUT;
    x->port = p[i + 1];
    x->size = op == 0xe6 ? 1 : o16 ? 2 : 4;
    x->value = x->size == 1 ? (eax & 0xff) : x->size == 2 ? (eax & 0xffff) : eax;
    x->len = i + 2;
    return;
  }
  if (op == 0xf4) {
    x->kind = EXIT_HALT;
    x->len = i + 1;
    return;
  }
  if (deprecated_at(p, n, i)) {
    x->cause = CAUSE_DEPRECATED;
    return;
  }
  /* SSE instructions (0f xx with a 16-byte memory operand) #GP on a misaligned operand. */
  if (op == 0x0f && i + 1 < n) {
    uint8_t op2 = p[i + 1];
    if ((op2 >= 0x10 && op2 <= 0x17) || (op2 >= 0x28 && op2 <= 0x2f) || (op2 >= 0x50 && op2 <= 0x7f) || op2 == 0xae ||
        (op2 >= 0xc2 && op2 <= 0xc6) || op2 >= 0xd0) {
      x->cause = CAUSE_GENERAL_PROTECTION;
      return;
    }
  }
}

#endif
