/**
 * Nominal rate used to convert between instruction budgets and time on the KVM backend, which
 * cannot count retired instructions cheaply: the emulator's default quantum of 500,000
 * instructions is "about 10 ms", so 50 instructions per microsecond keeps the same time
 * slice. `KvmVcpu.instructionsRetired` is guest time × this rate (an estimate).
 */
export const KVM_INSTRUCTIONS_PER_MICROSECOND = 50;
