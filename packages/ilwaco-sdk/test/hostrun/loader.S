/*
 * hostrun's 32-bit stub process (test tool only, not part of images). Linked at 0x70000000,
 * far above any guest memory (at most 1 GiB). hostrun drives it with ptrace: it executes the
 * system calls hostrun asks for (mmap2 of the guest memory) at do_syscall, then hostrun
 * points EIP at the guest's entry point. No libc.
 */
    .text
    .globl _start
_start:
    int3                      /* 0x70000000: "ready" */
    .globl do_syscall
do_syscall:                   /* 0x70000001 */
    int $0x80
    int3
    jmp do_syscall
    .section .note.GNU-stack, "", @progbits
