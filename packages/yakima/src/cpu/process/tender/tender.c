/*
 * The process backend's tender: one per VM, a fresh exec of this binary (never a fork of
 * Yakima). It maps the VM's guest memory (a memfd shared with Yakima), installs two 32-bit
 * DPL-3 LDT segments, locks itself down with seccomp and jumps to the guest in compatibility
 * mode. Every VM exit is a signal: `out`/`hlt` raise #GP (SIGSEGV) at CPL 3, faults raise their
 * own signal, and an ITIMER_VIRTUAL timer ends each CPU-time quantum. The handler posts the
 * exit to the control page, wakes Yakima with a futex and waits for the reply (the model is
 * Solo5's spt tender and gVisor's systrap platform; this is our own implementation).
 *
 * Usage (by Yakima only): tender <memory-bytes> <quantum-us> <parent-pid> <nice>, with the
 * guest memfd on fd 3 and the control-page memfd on fd 4, and an empty environment.
 *
 * Address space of this process:
 *   [0x100000, size)          guest memory again, read+execute: CS has base 0, so guest code
 *                             runs at its own addresses (a CS base slows code down 4-7x);
 *   [DATA_BASE, +size)        guest memory read+write (DS/ES/SS base DATA_BASE, limit size-1);
 *                             page 0 no access, page 1 (read-only virtual registers) read-only;
 *   above 4 GiB               this program, the control page, the signal stack.
 * Segmentation is not the isolation boundary: guest code can load other selectors or far-jump
 * to 64-bit code. The boundary is this process and its seccomp filter (futex WAIT/WAKE,
 * rt_sigreturn and exit_group only; any other syscall or any non-x86-64 syscall kills it).
 *
 * The signal handler uses no libc, no TLS and no stack protector: the guest may have loaded
 * FS/GS (changing their bases) or clobbered anything in its own 32-bit window.
 */
#define _GNU_SOURCE
#include <asm/ldt.h>
#include <errno.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

#include "control.h"
#include "decode.h"

#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif
#define GUEST_FD 3
#define CTL_FD 4
#define DATA_BASE 0x80000000ul
#define CODE_START 0x100000ul
#define MIN_MEMORY (2u << 20)
#define MAX_MEMORY (1u << 30)
#define SIGSTACK_SIZE (64u << 10)
/* LDT selectors: index << 3 | TI (LDT) | RPL 3. */
#define SEL_CODE ((0 << 3) | 4 | 3)
#define SEL_DATA ((1 << 3) | 4 | 3)
/* EFLAGS bits a guest may set: CF PF AF ZF SF DF OF (no TF, IOPL, AC, ...); IF and bit 1 always set. */
#define USER_FLAGS 0x0cd5u
#define FIXED_FLAGS 0x0202u
/* Spin this many TSC cycles (~30-60 µs) on the reply before sleeping on the futex: a hypercall
 * round trip through Yakima is usually shorter, and a futex wake-up costs tens of µs here. */
#define REPLY_SPIN_CYCLES 150000ull

static struct control_page *ctl;
static uint8_t *guest;
static uint32_t guest_size;
static volatile int started;

static inline long sys6(long n, long a, long b, long c, long d, long e, long f) {
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
  return ret;
}

static inline void futex_wake(volatile uint32_t *w) { sys6(SYS_futex, (long)w, FUTEX_WAKE, INT_MAX, 0, 0, 0); }
static inline void futex_wait(volatile uint32_t *w, uint32_t val) { sys6(SYS_futex, (long)w, FUTEX_WAIT, val, 0, 0, 0); }
static __attribute__((noreturn)) void die(int code) {
  for (;;) sys6(SYS_exit_group, code, 0, 0, 0, 0, 0);
}

/* Describe a fault of guest code at `eip` (CS and SS are the guest's). */
static void classify(int sig, const siginfo_t *si, const greg_t *g, uint32_t eip, struct exit_info *x) {
  uint32_t trapno = (uint32_t)g[REG_TRAPNO];
  x->trapno = trapno;
  x->err = (uint32_t)g[REG_ERR];
  /* Guest code lives in [CODE_START, size): only there can its bytes be read safely. */
  const uint8_t *code = 0;
  uint32_t avail = 0;
  if (eip >= CODE_START && eip < guest_size) {
    code = guest + eip;
    avail = guest_size - eip < 15 ? guest_size - eip : 15;
  }
  switch (sig) {
  case SIGSEGV:
    if (trapno == 14) { /* #PF: si_addr is a host address; map it back to a guest address */
      uintptr_t a = (uintptr_t)si->si_addr;
      x->kind = EXIT_FAULT;
      x->cause = CAUSE_MEMORY;
      if (a >= DATA_BASE && a < DATA_BASE + guest_size) x->addr = (uint32_t)(a - DATA_BASE);
      else x->addr = (uint32_t)a; /* an instruction fetch (CS base 0) */
      return;
    }
    if (trapno == 0) { x->kind = EXIT_FAULT; x->cause = CAUSE_DIVIDE_ERROR; return; }
    if (trapno == 5) { x->kind = EXIT_FAULT; x->cause = CAUSE_GENERAL_PROTECTION; return; } /* #BR */
    if (trapno == 4 || trapno == 1 || trapno == 3) { /* into, int1, int3: traps, EIP is past the instruction */
      x->kind = EXIT_FAULT;
      x->cause = CAUSE_DEPRECATED;
      x->back = 1;
      return;
    }
    if (trapno == 13) {
      if (eip >= guest_size) { x->kind = EXIT_FAULT; x->cause = CAUSE_MEMORY; x->addr = eip; return; }
      decode_gp(code, avail, (uint32_t)g[REG_RDX], (uint32_t)g[REG_RAX], x);
      return;
    }
    x->kind = EXIT_FAULT;
    x->cause = CAUSE_GENERAL_PROTECTION;
    return;
  case SIGBUS: /* #SS (stack past the segment limit) or #AC */
    x->kind = EXIT_FAULT;
    x->cause = trapno == 12 ? CAUSE_MEMORY_LIMIT : CAUSE_GENERAL_PROTECTION;
    return;
  case SIGILL:
    x->kind = EXIT_FAULT;
    x->cause = decode_is_deprecated(code, avail) ? CAUSE_DEPRECATED : CAUSE_INVALID_OPCODE;
    return;
  case SIGFPE:
    x->kind = EXIT_FAULT;
    x->cause = trapno == 0 ? CAUSE_DIVIDE_ERROR : CAUSE_FP_EXCEPTION;
    return;
  case SIGTRAP: /* int3 or icebp (traps: EIP is past the one-byte instruction) */
    x->kind = EXIT_FAULT;
    x->cause = CAUSE_DEPRECATED;
    x->back = trapno == 3 || trapno == 1;
    return;
  default:
    x->kind = EXIT_FAULT;
    x->cause = CAUSE_GENERAL_PROTECTION;
  }
}

/* FXSAVE-layout offsets (Intel SDM vol. 1, table 10-2) and the kernel's XSAVE signal-frame
 * marker (arch/x86/include/uapi/asm/sigcontext.h: struct _fpx_sw_bytes at byte 464). */
#define FX_MXCSR 24
#define FX_MXCSR_MASK 28
#define FX_ST0 32
#define FX_XMM0 160
#define FX_END 416
#define FX_SW_BYTES 464
#define FP_XSTATE_MAGIC1 0x46505853u
#define XSTATE_BV 512

/* String instructions, not loops: gcc may turn a copy loop into a call to libc's memcpy. */
static inline void copy_bytes(uint8_t *d, const uint8_t *s, unsigned long n) {
  __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
}
static inline void zero_bytes(uint8_t *d, unsigned long n) {
  __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(0) : "memory");
}

/* The XSAVE header's XSTATE_BV of a signal frame, or all-ones for a plain FXSAVE frame. */
static uint64_t frame_xstate_bv(const uint8_t *fx) {
  uint32_t magic;
  copy_bytes((uint8_t *)&magic, fx + FX_SW_BYTES, 4);
  if (magic != FP_XSTATE_MAGIC1) return ~0ull;
  uint64_t bv;
  copy_bytes((uint8_t *)&bv, fx + XSTATE_BV, 8);
  return bv;
}

/* Copy the guest's x87/SSE state from the signal frame to `out`. A component the processor
 * reports in its initial configuration (XSTATE_BV bit clear) is not written by XSAVE, so its
 * initial values are written here instead (FCW 0x37f, everything else zero). */
static void save_fpu(const uint8_t *fx, uint8_t *out) {
  copy_bytes(out, fx, 512);
  uint64_t bv = frame_xstate_bv(fx);
  if (!(bv & 1)) {
    zero_bytes(out, FX_MXCSR);
    out[0] = 0x7f;
    out[1] = 0x03;
    zero_bytes(out + FX_ST0, FX_XMM0 - FX_ST0);
  }
  if (!(bv & 2)) zero_bytes(out + FX_XMM0, FX_END - FX_XMM0);
}

/* Load `in` into the signal frame so rt_sigreturn restores it: the x87 and SSE registers and
 * MXCSR (its reserved bits cleared: a set one would make the restore fault), marked in use. */
static void load_fpu(uint8_t *fx, const uint8_t *in) {
  uint32_t mask, mxcsr;
  copy_bytes((uint8_t *)&mask, fx + FX_MXCSR_MASK, 4);
  if (mask == 0) mask = 0xffbf;
  copy_bytes(fx, in, FX_MXCSR);
  copy_bytes((uint8_t *)&mxcsr, in + FX_MXCSR, 4);
  mxcsr &= mask;
  copy_bytes(fx + FX_MXCSR, (const uint8_t *)&mxcsr, 4);
  copy_bytes(fx + FX_ST0, in + FX_ST0, FX_END - FX_ST0);
  if (frame_xstate_bv(fx) != ~0ull) fx[XSTATE_BV] |= 3;
}

/* The x87/SSE state a guest starts with (FNINIT and the power-up MXCSR, Intel SDM vol. 1 8.1.5
 * and 10.2.3): not whatever the tender's own start-up code left in the registers. */
static void init_fpu(uint8_t *fx) {
  uint32_t mxcsr = 0x1f80;
  zero_bytes(fx, FX_MXCSR);
  fx[0] = 0x7f;
  fx[1] = 0x03;
  copy_bytes(fx + FX_MXCSR, (const uint8_t *)&mxcsr, 4);
  zero_bytes(fx + FX_ST0, FX_END - FX_ST0);
  if (frame_xstate_bv(fx) != ~0ull) fx[XSTATE_BV] |= 3;
}

static void on_signal(int sig, siginfo_t *si, void *ucv) {
  ucontext_t *uc = (ucontext_t *)ucv;
  greg_t *g = uc->uc_mcontext.gregs;
  struct control_page *c = ctl;
  struct exit_info x = {0};
  uint64_t segs = (uint64_t)g[REG_CSGSFS]; /* cs | gs << 16 | fs << 32 | ss << 48 */
  uint16_t cs = (uint16_t)segs, ss = (uint16_t)(segs >> 48);
  uint32_t eip = (uint32_t)g[REG_RIP];
  x.signo = (uint32_t)sig;

  if (!started) {
    x.kind = EXIT_READY;
  } else if (cs != SEL_CODE || ss != SEL_DATA || (uint64_t)g[REG_RIP] > 0xffffffffu) {
    x.kind = EXIT_FAULT;
    x.cause = CAUSE_LEFT_SANDBOX_MODE;
    x.addr = cs | (uint32_t)ss << 16;
  } else if (sig == SIGVTALRM) {
    x.kind = EXIT_QUANTUM;
  } else {
    classify(sig, si, g, eip, &x);
  }
  if (x.kind == EXIT_IO_OUT || x.kind == EXIT_HALT) eip += x.len;
  eip -= x.back;

  c->kind = x.kind;
  c->port = x.port;
  c->value = x.value;
  c->size = x.size;
  c->cause = x.cause;
  c->trapno = x.trapno;
  c->err = x.err;
  c->addr = x.addr;
  c->signo = x.signo;
  c->exits++;
  c->regs[0] = (uint32_t)g[REG_RAX];
  c->regs[1] = (uint32_t)g[REG_RCX];
  c->regs[2] = (uint32_t)g[REG_RDX];
  c->regs[3] = (uint32_t)g[REG_RBX];
  c->regs[4] = (uint32_t)g[REG_RSP];
  c->regs[5] = (uint32_t)g[REG_RBP];
  c->regs[6] = (uint32_t)g[REG_RSI];
  c->regs[7] = (uint32_t)g[REG_RDI];
  c->eip = eip;
  c->eflags = (uint32_t)g[REG_EFL];
  uint8_t *fx = (uint8_t *)uc->uc_mcontext.fpregs;
  if (fx && started) save_fpu(fx, c->fpu);
  /* Spin only while Yakima says no other VM wants a CPU (reply_spin): else a spinning tender
   * takes the core that Yakima needs to answer it, or that another VM needs to run. Decided
   * and counted before posting, so whoever sees this exit sees its count too. */
  int spin = __atomic_load_n(&c->reply_spin, __ATOMIC_RELAXED) == 1;
  if (spin) c->reply_spins++;
  __atomic_store_n(&c->state, CTL_STATE_POSTED, __ATOMIC_SEQ_CST);
  futex_wake(&c->state);
  if (spin) {
    uint64_t t0 = __builtin_ia32_rdtsc();
    while (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) != CTL_STATE_GUEST && __builtin_ia32_rdtsc() - t0 < REPLY_SPIN_CYCLES) __builtin_ia32_pause();
  }
  while (__atomic_load_n(&c->state, __ATOMIC_SEQ_CST) != CTL_STATE_GUEST) {
    /* Announce the sleep, then re-check (Yakima stores the state, then reads `sleeping`). */
    __atomic_store_n(&c->sleeping, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&c->state, __ATOMIC_SEQ_CST) != CTL_STATE_GUEST) futex_wait(&c->state, CTL_STATE_POSTED);
    __atomic_store_n(&c->sleeping, 0, __ATOMIC_SEQ_CST);
  }

  /* A fault ends the VM: Yakima kills this process; never resume the faulting instruction. */
  if (x.kind == EXIT_FAULT) die(70);
  g[REG_RAX] = c->reply_regs[0];
  g[REG_RCX] = c->reply_regs[1];
  g[REG_RDX] = c->reply_regs[2];
  g[REG_RBX] = c->reply_regs[3];
  g[REG_RSP] = c->reply_regs[4];
  g[REG_RBP] = c->reply_regs[5];
  g[REG_RSI] = c->reply_regs[6];
  g[REG_RDI] = c->reply_regs[7];
  g[REG_RIP] = c->reply_eip;
  g[REG_EFL] = (c->reply_eflags & USER_FLAGS) | FIXED_FLAGS;
  g[REG_CSGSFS] = (greg_t)((segs & 0x0000ffffffff0000ull) | SEL_CODE | (uint64_t)SEL_DATA << 48);
  if (fx && (c->reply_flags & REPLY_LOAD_FPU)) {
    load_fpu(fx, c->reply_fpu);
    c->reply_flags = 0;
  } else if (fx && !started) {
    init_fpu(fx);
  }
  started = 1;
}

/* Return from a handler: the kernel needs SA_RESTORER; this is ours, not libc's. */
__asm__(".text\n"
        ".globl tender_restorer\n"
        "tender_restorer:\n"
        "  mov $15, %eax\n" /* rt_sigreturn */
        "  syscall\n"
        "  hlt\n");
void tender_restorer(void);

struct kernel_sigaction {
  void (*handler)(int, siginfo_t *, void *);
  unsigned long flags;
  void (*restorer)(void);
  uint64_t mask;
};

/* A set-up failure: the reason goes to the control page (stdio is /dev/null) and stderr. */
static void fail(const char *what) {
  int e = errno;
  if (ctl) snprintf(ctl->message, sizeof ctl->message, "%s: %s", what, strerror(e));
  fprintf(stderr, "tender: %s: %s\n", what, strerror(e));
  exit(111);
}

static unsigned long arg(const char *s, const char *what) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end || end == s) {
    fprintf(stderr, "tender: bad %s '%s'\n", what, s);
    exit(2);
  }
  return v;
}

static void install_seccomp(void) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rt_sigreturn, 7, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit_group, 6, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_futex, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      /* futex: only WAIT and WAKE (no requeue, no PI, no waitv). */
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FUTEX_WAIT, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FUTEX_WAKE, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) fail("PR_SET_NO_NEW_PRIVS");
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) fail("seccomp filter");
}

static void set_ldt(int entry, unsigned long base, int code) {
  struct user_desc d;
  memset(&d, 0, sizeof d);
  d.entry_number = (unsigned)entry;
  d.base_addr = (unsigned)base;
  d.limit = (guest_size >> 12) - 1;
  d.seg_32bit = 1;
  d.contents = code ? MODIFY_LDT_CONTENTS_CODE : MODIFY_LDT_CONTENTS_DATA;
  d.limit_in_pages = 1;
  d.useable = 1;
  if (syscall(SYS_modify_ldt, 1, &d, sizeof d) != 0) fail("modify_ldt");
}

/*
 * Pool mode (memory size 0 on the command line): started ahead of any VM, with a socket as
 * GUEST_FD. Block (no CPU) until Yakima sends the VM's memory size and its memfd (SCM_RIGHTS,
 * unix(7)); the memfd then takes GUEST_FD's place. Yakima closing the socket instead (its pool
 * is being emptied) ends the process quietly. Returns the memory size.
 */
static unsigned long await_handoff(void) {
  uint32_t size = 0;
  struct iovec iov = {&size, sizeof size};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } cbuf;
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = cbuf.buf;
  m.msg_controllen = sizeof cbuf.buf;
  ssize_t n;
  do n = recvmsg(GUEST_FD, &m, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n == 0) exit(0);
  if (n != (ssize_t)sizeof size) fail("receiving the VM's memory from Yakima");
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) {
    errno = EPROTO;
    fail("receiving the VM's memory from Yakima (no descriptor)");
  }
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  if (dup2(fd, GUEST_FD) != GUEST_FD) fail("dup2 of the VM's memory");
  close(fd);
  return size;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: tender <memory-bytes> <quantum-us> <parent-pid> <nice> (run by Yakima only)\n");
    return 2;
  }
  unsigned long size = arg(argv[1], "memory size");
  unsigned long quantum = arg(argv[2], "quantum");
  unsigned long ppid = arg(argv[3], "parent pid");
  unsigned long nice = arg(argv[4], "nice");
  int pooled = size == 0;
  if (!pooled && (size % 4096 || size < MIN_MEMORY || size > MAX_MEMORY)) {
    fprintf(stderr, "tender: memory size %lu out of range\n", size);
    return 2;
  }
  if (quantum < 100 || quantum > 10000000 || nice > 19) {
    fprintf(stderr, "tender: quantum or nice out of range\n");
    return 2;
  }
  /* Die with Yakima; if it is already gone, go now (PDEATHSIG only covers later deaths). */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != (pid_t)ppid) return 3;
  if (prctl(PR_SET_DUMPABLE, 0)) fail("PR_SET_DUMPABLE");
  struct rlimit zero = {0, 0};
  if (setrlimit(RLIMIT_CORE, &zero)) fail("RLIMIT_CORE");
  if (nice) setpriority(PRIO_PROCESS, 0, (int)nice);

  ctl = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, CTL_FD, 0);
  if (ctl == MAP_FAILED) {
    ctl = 0;
    fail("mapping the control page");
  }
  if (pooled) {
    size = await_handoff();
    if (size % 4096 || size < MIN_MEMORY || size > MAX_MEMORY) {
      errno = ERANGE;
      fail("memory size from Yakima");
    }
  }
  guest_size = (uint32_t)size;
  uint8_t *data = mmap((void *)DATA_BASE, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, GUEST_FD, 0);
  if (data != (void *)DATA_BASE) fail("mapping guest memory (data view)");
  if (mprotect(data, 4096, PROT_NONE) || mprotect(data + 4096, 4096, PROT_READ)) fail("protecting pages 0 and 1");
  void *text = mmap((void *)CODE_START, size - CODE_START, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_FIXED_NOREPLACE, GUEST_FD, CODE_START);
  if (text != (void *)CODE_START) fail("mapping guest memory (code view)");
  guest = data;

  set_ldt(0, 0, 1);
  set_ldt(1, DATA_BASE, 0);

  stack_t st;
  st.ss_sp = mmap(NULL, SIGSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (st.ss_sp == MAP_FAILED) fail("signal stack");
  st.ss_size = SIGSTACK_SIZE;
  st.ss_flags = 0;
  if (sigaltstack(&st, NULL)) fail("sigaltstack");
  struct kernel_sigaction sa = {on_signal, SA_SIGINFO | SA_ONSTACK | SA_RESTORER, tender_restorer, ~0ull};
  int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGVTALRM};
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    if (syscall(SYS_rt_sigaction, sigs[i], &sa, NULL, 8)) fail("rt_sigaction");
  }
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, NULL)) fail("sigprocmask");
  struct itimerval it = {{(time_t)(quantum / 1000000), (suseconds_t)(quantum % 1000000)}, {(time_t)(quantum / 1000000), (suseconds_t)(quantum % 1000000)}};
  if (setitimer(ITIMER_VIRTUAL, &it, NULL)) fail("setitimer");

  /* No descriptor survives into the sandbox (the mappings keep the memfds alive). */
  for (int fd = 0; fd < 1024; fd++) close(fd);
  install_seccomp();
  /* From here on only futex, rt_sigreturn and exit_group work. Close stdio last: setup errors went there. */
  __asm__ volatile("mov %0, %%ds\n\tmov %0, %%es" : : "r"(SEL_DATA));
  /* `hlt` at CPL 3 is #GP: the handler posts READY, waits for the first registers, and returns
   * into the guest in compatibility mode. It never comes back here. */
  __asm__ volatile("hlt");
  die(71);
}
