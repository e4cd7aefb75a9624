/**
 * Guest-physical memory for the KVM backend: host mappings from memory/host-memory.ts (one
 * table of regions for every native backend), which KVM maps into the guest.
 */
export { adoptHostMemory, allocateGuestMemory, forgetHostMemory, hostAddressOf, isKvmMemory, releaseGuestMemory } from '../../memory/host-memory.js';
