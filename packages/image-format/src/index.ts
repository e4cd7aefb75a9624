export * from './abi.js';
export * from './manifest.js';
