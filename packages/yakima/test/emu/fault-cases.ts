/** Fault cases shared by faults.test.ts and the coverage test. */

/** Deprecated instructions (paper 3.1.2) as assembler text: each must fault 'deprecated-instruction'. */
export const DEPRECATED_CASES: [string, string][] = [
  ['cli', 'cli'], ['sti', 'sti'], ['int 0x80', 'int $0x80'], ['int3', 'int3'], ['into', 'into'], ['iret', 'iret'],
  ['mov to ds', 'mov %ax, %ds'], ['mov from ds', 'mov %ds, %ax'], ['push es', 'push %es'], ['pop ds', 'pop %ds'],
  ['push fs', 'push %fs'], ['pop gs', 'pop %gs'], ['in al, dx', 'in %dx, %al'], ['in eax, imm8', 'in $0x60, %eax'],
  ['insb', 'insb'], ['outsl', 'outsl'], ['lgdt', 'lgdt 0x3000'], ['sgdt', 'sgdt 0x3000'], ['lidt', 'lidt 0x3000'],
  ['lldt', 'lldt %ax'], ['ltr', 'ltr %ax'], ['mov to cr0', 'mov %eax, %cr0'], ['mov from cr3', 'mov %cr3, %eax'],
  ['mov to dr7', 'mov %eax, %db7'], ['far jmp', 'ljmp $0x10, $0x100000'], ['far call', 'lcall $0x10, $0x100000'],
  ['far ret', 'lret'], ['indirect far jmp', 'ljmp *0x3000'], ['lds', 'lds 0x3000, %eax'], ['lss', 'lss 0x3000, %eax'],
  ['pop es', 'pop %es'], ['push cs', 'push %cs'], ['push ss', 'push %ss'], ['pop ss', 'pop %ss'], ['push ds', 'push %ds'],
  ['pop fs', 'pop %fs'], ['push gs', 'push %gs'], ['arpl', 'arpl %ax, %bx'], ['insl', 'insl'], ['outsb', 'outsb'],
  ['far ret imm16', 'lret $8'], ['in al, imm8', 'in $0x60, %al'], ['in eax, dx', 'in %dx, %eax'], ['int1', '.byte 0xf1'],
  ['les', 'les 0x3000, %eax'], ['indirect far call', 'lcall *0x3000'], ['lar', 'lar %ax, %bx'], ['lsl', 'lsl %ax, %bx'],
  ['syscall', 'syscall'], ['sysret', 'sysret'], ['mov from dr0', 'mov %db0, %eax'], ['rdpmc', 'rdpmc'], ['sysexit', 'sysexit'],
  ['rsm', 'rsm'], ['lfs', 'lfs 0x3000, %eax'], ['lgs', 'lgs 0x3000, %eax'], ['sldt', 'sldt %ax'], ['str', 'str %ax'],
  ['verr', 'verr %ax'], ['verw', 'verw %ax'], ['sidt', 'sidt 0x3000'], ['smsw', 'smsw %eax'], ['lmsw', 'lmsw %ax'],
  ['invlpg', 'invlpg 0x3000'],
  ['wrmsr', 'wrmsr'], ['rdmsr', 'rdmsr'], ['invd', 'invd'], ['wbinvd', 'wbinvd'], ['clts', 'clts'], ['sysenter', 'sysenter'],
];

/** Byte sequences that must fault 'invalid-opcode'. */
export const INVALID_CASES: [string, number[]][] = [
  ['ud2', [0x0f, 0x0b]], ['lock nop', [0xf0, 0x90]], ['lock add to a register', [0xf0, 0x01, 0xd8]],
  ['lock mov', [0xf0, 0x89, 0x05, 0, 0x30, 0, 0]], ['lea with a register operand', [0x8d, 0xc0]],
  ['16-bit addressing (0x67)', [0x67, 0x8b, 0x07]], ['0f 38 three-byte map (SSSE3)', [0x0f, 0x38, 0x00, 0xc1]],
  ['undefined 0f ff', [0x0f, 0xff]], ['salc', [0xd6]], ['cmpxchg8b with a register operand', [0x0f, 0xc7, 0xc8]],
  ['x87 fsin (not in the subset)', [0xd9, 0xfe]],
];

/**
 * Emulator-only snippets for entries the host cannot be compared on (VMM exits, cpuid,
 * rdtsc, MXCSR, fences, bound); faults.test.ts asserts their behaviour.
 */
export const EMU_ONLY_SNIPPETS: [string, string][] = [
  ['out', 'mov $0x502, %dx\n out %eax, %dx\n out %ax, %dx\n out %al, %dx\n out %al, $0x80\n out %eax, $0x80'],
  ['cpuid/rdtsc', 'xor %eax, %eax\n cpuid\n rdtsc'],
  ['mxcsr', 'stmxcsr 0x3000\n ldmxcsr 0x3000'],
  ['fences', 'lfence\n mfence\n sfence\n clflush 0x3000'],
  ['bound', 'movl $2, 0x3000\n movl $9, 0x3004\n mov $5, %eax\n bound %eax, 0x3000'],
  ['ud2', 'ud2'],
];
