import type { DenaliImage } from '@denali/image-format';
import type { GuestMemory } from '../src/boot/guest-memory.js';
import type { Vcpu, VcpuExit, VcpuRegs } from '../src/cpu/vcpu.js';
import { rawImage } from './images.js';

/** A vCPU whose "guest" is a JS step function: lets scheduler tests script exits exactly. */
export class ScriptedVcpu implements Vcpu {
  regs: VcpuRegs = { gpr: new Array<number>(8).fill(0), eip: 0, eflags: 2 };
  instructionsRetired = 0;
  constructor(
    readonly mem: GuestMemory,
    private readonly step: (cpu: ScriptedVcpu, max: number) => VcpuExit,
  ) {}
  run(max: number): VcpuExit {
    return this.step(this, max);
  }
  getRegs(): VcpuRegs {
    return { gpr: [...this.regs.gpr], eip: this.regs.eip, eflags: this.regs.eflags };
  }
  setRegs(r: VcpuRegs): void {
    this.regs = { gpr: [...r.gpr], eip: r.eip, eflags: r.eflags };
  }
}

/** A minimal image (`hlt` bytes at 1 MiB) for VMs driven by scripted vCPUs. */
export function tinyImage(name = 'tiny', memorySize = 4 << 20): DenaliImage {
  return rawImage(name, new Uint8Array(16).fill(0xf4), memorySize);
}
