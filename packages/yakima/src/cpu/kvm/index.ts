/**
 * Yakima's second CPU backend: native x86 on Linux KVM, driven from TypeScript through koffi
 * (FFI to libc open/ioctl/mmap; no compiled addon).
 */
export { probeKvm, KvmUnavailableError, type KvmProbe } from './probe.js';
export { allocateGuestMemory, releaseGuestMemory, isKvmMemory, hostAddressOf } from './kvm-memory.js';
export { KvmVcpu, KVM_INSTRUCTIONS_PER_MICROSECOND, KVM_TSS_ADDR, type KvmExecutor } from './kvm-vcpu.js';
export { KvmBackend, type KvmBackendOptions } from './backend.js';
export { DIAG_BASE, DIAG_PORT } from './diag.js';
