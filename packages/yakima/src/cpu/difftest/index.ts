/**
 * Differential testing of the emulator (`EmuCpu`) against a reference x86: random instruction
 * sequences from the emulator's table run on both from the same state; registers, defined
 * flags, XMM and memory must agree. See `bench/fuzz-cpu.ts` and `test/difftest/`.
 */
export { Rng, mixSeed } from './rng.js';
export { CODE_BASE, DATA_BASE, MEM_SIZE, REC, PTR_OFF, buildImage, elfExecutable, readOutput, type CaseInput, type CaseOutput, type CodePiece } from './image.js';
export { analyze, caseInput, generateCase, generatorEntries, layout, makeStep, sanitize, type DiffCase, type GenOptions, type Step } from './gen.js';
export { KvmOracle, NativeOracle, ProcessOracle, runOnEmu, runOnVcpu, type CaseResult, type EngineMode, type Oracle } from './oracle.js';
export { checkBatch, compareOutputs, disassemble, formatReproducer, generateBatch, loadRegressions, makeRegression, replayRegression, shrink, stateFromJson, type BatchResult, type Finding, type Regression, type StateJson } from './run.js';
export { kvmEntries, openOracle, type OracleChoice } from './select.js';
