/*
 * Thread context switch (ilwaco/thread.h, paper 3.3: non-preemptive threads).
 * void __ilwaco_switch(uint32_t *save_esp, uint32_t next_esp)
 * Saves the callee-saved registers (ebp, ebx, esi, edi) on the current stack, stores esp in
 * *save_esp, loads next_esp and pops the same registers: the other thread returns from its
 * own call to __ilwaco_switch. x87/SSE state is caller-saved in the i386 ABI, so it is not
 * switched (the control words are never changed by Ilwaco).
 */
    .text
    .globl __ilwaco_switch
    .type __ilwaco_switch, @function
__ilwaco_switch:
    movl 4(%esp), %eax        /* save_esp */
    movl 8(%esp), %edx        /* next_esp */
    pushl %ebp
    pushl %ebx
    pushl %esi
    pushl %edi
    movl %esp, (%eax)
    movl %edx, %esp
    popl %edi
    popl %esi
    popl %ebx
    popl %ebp
    ret
    .size __ilwaco_switch, . - __ilwaco_switch

/*
 * A new thread's stack is built (lib/thread.c) as: edi esi ebx ebp = 0, then the address of
 * this trampoline, then a 16-byte-aligned area. The thread function runs via
 * __ilwaco_thread_start(), which never returns.
 */
    .globl __ilwaco_thread_trampoline
    .type __ilwaco_thread_trampoline, @function
__ilwaco_thread_trampoline:
    xorl %ebp, %ebp
    call __ilwaco_thread_start
    hlt
    .size __ilwaco_thread_trampoline, . - __ilwaco_thread_trampoline
    .section .note.GNU-stack, "", @progbits
