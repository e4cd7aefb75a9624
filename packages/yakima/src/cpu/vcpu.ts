/**
 * What every CPU backend (the bundled emulator in `cpu/emu`, native x86 on KVM in `cpu/kvm`,
 * native x86 in sandboxed processes in `cpu/process`) offers Yakima. Only the CPU differs between backends; devices, hypercall dispatch, the
 * scheduler and the idle table are shared (paper 3.2, Figure 3).
 */

/** General-purpose register indices, in x86 encoding order (Intel SDM vol. 2, table 2-1). */
export const enum Reg {
  EAX = 0,
  ECX = 1,
  EDX = 2,
  EBX = 3,
  ESP = 4,
  EBP = 5,
  ESI = 6,
  EDI = 7,
}

/** Why a fault stopped the vCPU. `detail` is a short human phrase. */
export type FaultCause =
  | 'divide-error' // #DE
  | 'invalid-opcode' // #UD: an instruction the architecture does not define
  | 'deprecated-instruction' // privileged or non-virtualizable (paper 3.1.2)
  | 'memory' // access outside guest memory, to page 0, or a write to the read-only pages
  | 'general-protection' // #GP for other reasons (e.g. bound, misaligned SSE operand)
  | 'triple-fault' // unrecoverable state (KVM shutdown exit)
  | 'bad-hypercall' // unknown number or a bad pointer in the argument block
  | 'unknown-exit'; // a backend exit Yakima does not handle

/** Reasons a call to `Vcpu.run` returned. The guest's EIP is already past the instruction for io/halt. */
export type VcpuExit =
  /** `out dx, {al,ax,eax}`: `value` is the operand zero-extended; size in bytes. */
  | { kind: 'io-out'; port: number; value: number; size: 1 | 2 | 4 }
  /** `hlt`: terminates the VM (paper 3.2). */
  | { kind: 'halt' }
  /** The instruction budget (quantum) was used up; the vCPU can simply be run again. */
  | { kind: 'quantum' }
  /**
   * The guest did something that stops it. `eip` is the faulting instruction's address,
   * `bytes` up to 15 bytes read from there (fewer if memory ends), `address` the bad
   * memory address for 'memory' faults.
   */
  | { kind: 'fault'; cause: FaultCause; detail: string; eip: number; bytes: Uint8Array; address?: number };

/** Snapshot of the architectural state that Yakima reads and writes between runs. */
export interface VcpuRegs {
  /** The eight general registers, indexed by `Reg`, as unsigned 32-bit values. */
  gpr: number[];
  eip: number;
  /** EFLAGS with lazily computed flags materialized. */
  eflags: number;
}

/**
 * A vCPU's complete architectural state (registers, flags, FPU/SSE/x87 state) as its backend
 * serializes it: opaque bytes, restorable only by a vCPU of the same backend (swap, clone).
 */
export interface VcpuState {
  /** Backend that wrote it, e.g. 'emu' or 'kvm'. */
  backend: string;
  bytes: Uint8Array;
}

/** A virtual CPU bound to one VM's guest memory. */
export interface Vcpu {
  /**
   * Run guest code until something needs Yakima, or until `maxInstructions` instructions
   * have retired (then `{kind:'quantum'}`).
   */
  run(maxInstructions: number): VcpuExit;
  getRegs(): VcpuRegs;
  setRegs(regs: VcpuRegs): void;
  /** Instructions retired since creation (emulator: exact; other backends may estimate). */
  readonly instructionsRetired: number;
  /**
   * Backends whose vCPUs run off the main thread (KVM workers): run for up to `quantumMicros`
   * µs of guest time without blocking the event loop. Yakima prefers this when present.
   */
  runAsync?(quantumMicros: number): Promise<VcpuExit>;
  /**
   * The full architectural state, for swap-out and cloning (call only between runs). Backends
   * without it cannot be swapped.
   */
  saveState?(): VcpuState;
  /** Load a state from `saveState` of the same backend. @throws Error for another backend's or a malformed state. */
  restoreState?(state: VcpuState): void;
  /** Release host resources (file descriptors, memory) once the VM has finished. Idempotent. */
  destroy?(): void;
  /**
   * Host CPU time this vCPU has used, in µs, where the backend can tell (the process backend:
   * the kernel's account of the VM's process, /proc/<pid>/schedstat).
   */
  cpuTimeMicros?(): number;
}
