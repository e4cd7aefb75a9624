/** `EmuCpu.stop` bits: why the interpreter must leave the current block early. */

/** A write hit decoded code: re-decode from the next instruction. */
export const STOP_SMC = 1;
/** `pendingExit` holds an exit for Yakima. */
export const STOP_EXIT = 2;
/** A long rep string instruction paused: end the quantum now. */
export const STOP_YIELD = 4;
/** A conditional branch inside a block (a side exit, see `jccSide`) was taken: EIP is its target. */
export const STOP_BRANCH = 8;
