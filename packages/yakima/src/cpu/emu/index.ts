/**
 * The bundled x86 emulator backend of Yakima (runs anywhere Node runs).
 *
 * `EmuCpu` implements `Vcpu` for para-virtualized 32-bit flat protected-mode guests.
 * The instruction table (`TABLE`) is the single description of every implemented opcode.
 */
export { EmuCpu } from './cpu.js';
export { TABLE } from './table.js';
export type { OpSpec, Instr, OpSize, ImmKind, TestKind, Handler } from './instr.js';
export { decodeInstr } from './decoder.js';
export { Block, BlockCache, SharedCode, MAX_BLOCK_INSTRS } from './block-cache.js';
export { CPUID_VENDOR, CPUID_1_EAX, CPUID_1_EDX } from './system.js';
export * as Flags from './flags.js';
