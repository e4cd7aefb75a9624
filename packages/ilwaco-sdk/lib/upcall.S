/*
 * The upcall (virtual interrupt) handler. Yakima enters it with INTERRUPT_ENABLE cleared and
 * the interrupted EFLAGS at [esp], EIP at [esp+4] (UPCALL_FRAME). Ilwaco threads are
 * non-preemptive (paper 3.3), so the handler only notes the interrupt: it moves the PENDING
 * bits into __ilwaco_irq_bits (xchg, then one `orl`: atomic with respect to upcalls) and
 * counts the delivery. The scheduler collects the bits when it looks for work.
 * Pure integer code: every general register is preserved, flags are restored by popfl, no
 * x87/SSE state is touched.
 */
#include <denali/abi.h>
    .text
    .globl __ilwaco_upcall
    .type __ilwaco_upcall, @function
__ilwaco_upcall:
    pushl %eax
    xorl %eax, %eax
    xchgl %eax, DENALI_VREG_RW_BASE + DENALI_VREG_RW_PENDING
    orl %eax, __ilwaco_irq_bits
    incl ilwaco_upcall_count
    movl $1, DENALI_VREG_RW_BASE + DENALI_VREG_RW_INTERRUPT_ENABLE
    popl %eax
    popfl
    ret
    .size __ilwaco_upcall, . - __ilwaco_upcall

    .data
    .align 4
    .globl __ilwaco_irq_bits
__ilwaco_irq_bits:
    .long 0
    .globl ilwaco_upcall_count
ilwaco_upcall_count:
    .long 0
    .section .note.GNU-stack, "", @progbits
