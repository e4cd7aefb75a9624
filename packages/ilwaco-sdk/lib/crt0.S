/*
 * Entry point of every Ilwaco service image. Yakima jumps here with esp = STACK_TOP and every
 * other register 0 (no BIOS, no bootloader: paper 3.1.2). We align the stack to 16 bytes as
 * the i386 System V ABI (and SSE spills) expect, then call __ilwaco_start (lib/start.c),
 * which sets up the heap and threads, builds argv from the boot-argument virtual registers,
 * calls main(argc, argv) and exit()s with its result.
 */
    .section .text.start, "ax", @progbits
    .globl _start
    .type _start, @function
_start:
    xorl %ebp, %ebp           /* end of the frame-pointer chain */
    andl $-16, %esp
    call __ilwaco_start
1:  hlt                       /* __ilwaco_start does not return; hlt terminates the VM */
    jmp 1b
    .size _start, . - _start
    .section .note.GNU-stack, "", @progbits
