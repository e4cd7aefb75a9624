/**
 * Is KVM usable here? One clear reason when it is not. Also owns the process-wide /dev/kvm
 * handle and the facts read from it once (vCPU mmap size, supported CPUID).
 */
import { existsSync } from 'node:fs';
import { KVM, KVM_API_VERSION, KVM_CAP, KVM_CPUID2_SIZE, KVM_CPUID_ENTRY2_SIZE } from './kvm-api.js';
import { LINUX, libc, sysError } from './libc.js';

export type KvmProbe =
  /**
   * `native`: guests run directly on the processor (hardware virtualization); false where the
   * kernel emulates them (kvm-pvm). `note`: a caveat worth printing.
   */
  | { usable: true; native: boolean; note?: string }
  | { usable: false; reason: string };

/** What the backend needs from /dev/kvm, read once per process. */
export interface KvmSystem {
  /** The open /dev/kvm fd (kept open for the life of the process). */
  fd: number;
  /** Bytes to mmap from each vCPU fd (kvm_run plus the PIO data page, ...). */
  vcpuMmapSize: number;
  /** A `struct kvm_cpuid2` with the host's supported CPUID entries, for KVM_SET_CPUID2. */
  cpuid: Uint8Array;
}

/** Thrown by the backend when KVM cannot be used; `message` is the probe's reason. */
export class KvmUnavailableError extends Error {
  constructor(reason: string) {
    super(`KVM is not usable: ${reason}`);
    this.name = 'KvmUnavailableError';
  }
}

let system: KvmSystem | undefined;
let failure: string | undefined;

/**
 * Check that this process can run VMs on KVM: Linux x86-64 with koffi, /dev/kvm present and
 * openable, API version 12, the capabilities the backend relies on, and a VM can actually be
 * created (fails when hardware or nested virtualization is off). The result is cached.
 */
export function probeKvm(): KvmProbe {
  if (system) return usable();
  if (failure === undefined) {
    try {
      system = openKvm();
      return usable();
    } catch (e) {
      failure = e instanceof Error ? e.message : String(e);
    }
  }
  return { usable: false, reason: failure };
}

/** The process-wide KVM handle. @throws KvmUnavailableError with the probe's reason. */
export function kvmSystem(): KvmSystem {
  const p = probeKvm();
  if (!p.usable) throw new KvmUnavailableError(p.reason);
  return system!;
}

function usable(): KvmProbe {
  // kvm-pvm (a KVM implementation without hardware virtualization, used for nested setups)
  // runs only 64-bit guest code natively; a 32-bit protected-mode guest is emulated by the
  // kernel instruction by instruction (slow, and SSE arithmetic, int n, int3 are unsupported).
  if (existsSync('/sys/module/kvm_pvm')) {
    return {
      usable: true,
      native: false,
      note: 'this KVM is kvm-pvm (no hardware virtualization): 32-bit Denali guests are emulated by the kernel, not run natively — slow, and SSE arithmetic / int n are not supported',
    };
  }
  return { usable: true, native: true };
}

function openKvm(): KvmSystem {
  let c;
  try {
    c = libc();
  } catch (e) {
    throw new Error(`cannot load the libc FFI (koffi): ${e instanceof Error ? e.message : String(e)}`);
  }
  const fd = c.open('/dev/kvm', LINUX.O_RDWR | LINUX.O_CLOEXEC);
  if (fd < 0) {
    const e = c.errno();
    if (e === LINUX.ENOENT) throw new Error('/dev/kvm does not exist (no KVM in this kernel or container: load kvm-intel/kvm-amd, or pass the device through)');
    if (e === LINUX.EACCES || e === LINUX.EPERM) throw new Error('no permission to open /dev/kvm (add this user to the kvm group or fix the device permissions)');
    throw sysError('cannot open /dev/kvm', e);
  }
  try {
    const version = c.ioctlInt(fd, KVM.GET_API_VERSION, 0);
    if (version !== KVM_API_VERSION) throw new Error(`KVM API version is ${version}, expected ${KVM_API_VERSION}`);
    const caps: [number, string][] = [
      [KVM_CAP.USER_MEMORY, 'KVM_CAP_USER_MEMORY'],
      [KVM_CAP.SET_TSS_ADDR, 'KVM_CAP_SET_TSS_ADDR'],
      [KVM_CAP.EXT_CPUID, 'KVM_CAP_EXT_CPUID'],
      [KVM_CAP.READONLY_MEM, 'KVM_CAP_READONLY_MEM'],
      [KVM_CAP.SYNC_REGS, 'KVM_CAP_SYNC_REGS'],
      [KVM_CAP.IMMEDIATE_EXIT, 'KVM_CAP_IMMEDIATE_EXIT'],
    ];
    for (const [cap, name] of caps) {
      if (c.ioctlInt(fd, KVM.CHECK_EXTENSION, cap) <= 0) throw new Error(`this KVM lacks ${name}`);
    }
    const vcpuMmapSize = c.ioctlInt(fd, KVM.GET_VCPU_MMAP_SIZE, 0);
    if (vcpuMmapSize <= 0) throw sysError('KVM_GET_VCPU_MMAP_SIZE failed', c.errno());
    const vm = c.ioctlInt(fd, KVM.CREATE_VM, 0);
    if (vm < 0) {
      const e = c.errno();
      throw new Error(
        `KVM_CREATE_VM failed (${c.strerror(e)}): hardware virtualization is unavailable — disabled in firmware, held by another hypervisor, or nested virtualization is off`,
      );
    }
    c.close(vm);
    return { fd, vcpuMmapSize, cpuid: supportedCpuid(fd) };
  } catch (e) {
    c.close(fd);
    throw e;
  }
}

function supportedCpuid(fd: number): Uint8Array {
  const c = libc();
  for (let nent = 64; nent <= 1024; nent *= 2) {
    const buf = new Uint8Array(KVM_CPUID2_SIZE + nent * KVM_CPUID_ENTRY2_SIZE);
    new DataView(buf.buffer).setUint32(0, nent, true);
    if (c.ioctlPtr(fd, KVM.GET_SUPPORTED_CPUID, buf) === 0) return buf;
    if (c.errno() !== 7 /* E2BIG */) throw sysError('KVM_GET_SUPPORTED_CPUID failed', c.errno());
  }
  throw new Error('KVM_GET_SUPPORTED_CPUID: too many entries');
}
