/**
 * Yakima's sandboxed-process CPU backend: native x86 without KVM, each VM's guest code in its
 * own seccomp-confined host process (the tender), like Solo5's spt tender.
 */
export { defaultProcessThreads, ProcessBackend, type ProcessBackendOptions } from './backend.js';
export { ProcessVcpu, type ProcessVcpuOptions } from './process-vcpu.js';
export { allocateSharedGuestMemory, releaseSharedGuestMemory, sharedMemoryFd } from '../../memory/host-memory.js';
export { tenderBinary, TenderBuildError } from './tender-build.js';
export { probeProcessBackend, type ProcessProbe } from './probe.js';
export { drainTenderPool, fillTenderPool, pooledTenderPids, TENDER_POOL_SIZE } from './tender-pool.js';
