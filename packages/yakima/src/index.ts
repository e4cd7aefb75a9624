export * from './cpu/vcpu.js';
export * from './boot/guest-memory.js';
