/**
 * The tender's sandbox as the kernel reports it (/proc/<pid>), and the handler's promise of no
 * libc and no TLS, checked in the built binary.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { LAYOUT } from '@denali/image-format';
import { describe, expect, it } from 'vitest';
import {
  allocateSharedGuestMemory,
  drainTenderPool,
  fillTenderPool,
  pooledTenderPids,
  probeProcessBackend,
  ProcessBackend,
  ProcessVcpu,
  TENDER_POOL_SIZE,
  tenderBinary,
} from '../../src/cpu/process/index.js';

const probe = probeProcessBackend();
if (!probe.usable) console.log(`process backend tests skipped: ${probe.reason}`);

/** A VM spinning in `jmp $` (so its tender is alive and sandboxed), and its pid. */
function spinner(pool = false): { vcpu: ProcessVcpu; pid: number } {
  const mem = allocateSharedGuestMemory(LAYOUT.MIN_MEMORY);
  mem.u8.set([0xeb, 0xfe], LAYOUT.IMAGE_BASE);
  const vcpu = new ProcessVcpu(mem, { quantumMicros: 1000, pool });
  vcpu.setRegs({ gpr: [0, 0, 0, 0, LAYOUT.MIN_MEMORY, 0, 0, 0], eip: LAYOUT.IMAGE_BASE, eflags: 0x202 });
  const e = vcpu.run(0); // the first quantum: the guest now runs under seccomp
  expect(e.kind).toBe('quantum');
  return { vcpu, pid: vcpu.pid! };
}

describe.skipIf(!probe.usable)('the tender process', () => {
  it('runs under seccomp with no new privileges, no descriptors, an empty environment and no core dumps', () => {
    const { vcpu, pid } = spinner();
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      expect(status).toMatch(/^Seccomp:\s+2$/m);
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
      expect(readdirSync(`/proc/${pid}/fd`)).toEqual([]);
      expect(readFileSync(`/proc/${pid}/environ`)).toHaveLength(0);
      expect(readFileSync(`/proc/${pid}/limits`, 'utf8')).toMatch(/^Max core file size\s+0\s+0\s/m);
      // A fresh exec of the tender binary, not a fork of Node.
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]).toBe(tenderBinary());
    } finally {
      vcpu.destroy();
    }
  });

  it('a tender from the pool (spawned before the VM existed) is handed its memory and runs under the same sandbox', () => {
    fillTenderPool(1000, 5);
    const spares = pooledTenderPids();
    expect(spares).toHaveLength(TENDER_POOL_SIZE);
    const { vcpu, pid } = spinner(true);
    try {
      expect(spares).toContain(pid); // no spawn on this VM's path
      expect(pooledTenderPids()).not.toContain(pid);
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      expect(status).toMatch(/^Seccomp:\s+2$/m);
      expect(readdirSync(`/proc/${pid}/fd`)).toEqual([]); // the socket and the memfd are closed too
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]).toBe(tenderBinary());
      for (let i = 0; i < 3; i++) expect(vcpu.run(0).kind).toBe('quantum');
    } finally {
      vcpu.destroy();
      drainTenderPool();
    }
    expect(pooledTenderPids()).toEqual([]);
  });

  it('accounts CPU time from the kernel and ends each quantum of a spinning guest', () => {
    const { vcpu } = spinner();
    try {
      for (let i = 0; i < 5; i++) expect(vcpu.run(0).kind).toBe('quantum');
      expect(vcpu.cpuTimeMicros()).toBeGreaterThan(3000);
    } finally {
      vcpu.destroy();
    }
  });

  it('reports a process killed from outside as a fault with the kernel’s reason', () => {
    const { vcpu, pid } = spinner();
    try {
      process.kill(pid, 'SIGKILL');
      const e = vcpu.run(0);
      expect(e.kind).toBe('fault');
      if (e.kind === 'fault') expect(e.detail).toMatch(/SIGKILL/);
    } finally {
      vcpu.destroy();
    }
  });

  it('reports a process killed between two runs as a fault with the kernel’s reason when a waiter thread waits (runAsync)', async () => {
    // runAsync does not ask the kernel before it resumes: the wait after the resume notices.
    const backend = new ProcessBackend({ quantumMicros: 1000, pool: false });
    try {
      const mem = allocateSharedGuestMemory(LAYOUT.MIN_MEMORY);
      mem.u8.set([0xeb, 0xfe], LAYOUT.IMAGE_BASE);
      const vcpu = backend.createVcpu(mem);
      vcpu.setRegs({ gpr: [0, 0, 0, 0, LAYOUT.MIN_MEMORY, 0, 0, 0], eip: LAYOUT.IMAGE_BASE, eflags: 0x202 });
      expect((await vcpu.runAsync(1000)).kind).toBe('quantum');
      process.kill(vcpu.pid, 'SIGKILL');
      const e = await vcpu.runAsync(1000);
      expect(e.kind).toBe('fault');
      if (e.kind === 'fault') expect(e.detail).toMatch(/SIGKILL/);
      vcpu.destroy();
    } finally {
      await backend.close();
    }
  });
});

let objdump: string | undefined;
try {
  objdump = execFileSync('objdump', ['--version'], { encoding: 'utf8' }).split('\n')[0];
} catch {
  console.log('tender disassembly check skipped: objdump (binutils) is not installed');
}

describe.skipIf(!probe.usable || !objdump)('the tender binary', () => {
  it('has a signal handler that calls no library code and never touches FS or GS (TLS)', () => {
    const dis = execFileSync('objdump', ['-d', '--no-show-raw-insn', tenderBinary()], { encoding: 'utf8', maxBuffer: 1 << 26 });
    const start = dis.indexOf('<on_signal>:');
    expect(start).toBeGreaterThan(0);
    const body = dis.slice(start, dis.indexOf('\n\n', start));
    const calls = [...body.matchAll(/call\s+\S+\s+<([^>]+)>/g)].map((m) => m[1]!);
    const own = ['skip_prefixes', 'deprecated_at', 'classify', 'decode_gp', 'decode_is_deprecated', 'die', 'futex'];
    for (const c of calls) expect(own.some((o) => c.startsWith(o)), c).toBe(true);
    expect(body).not.toMatch(/%fs:|%gs:/);
  });
});

describe.skipIf(!probe.usable)('the tender and Yakima', () => {
  it('a tender dies when its Yakima is killed (PR_SET_PDEATHSIG)', async () => {
    const { spawn } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const index = fileURLToPath(new URL('../../src/cpu/process/index.ts', import.meta.url));
    const script = `
      import { allocateSharedGuestMemory, ProcessVcpu } from ${JSON.stringify(index)};
      const mem = allocateSharedGuestMemory(${LAYOUT.MIN_MEMORY});
      mem.u8.set([0xeb, 0xfe], ${LAYOUT.IMAGE_BASE});
      const v = new ProcessVcpu(mem, {});
      v.setRegs({ gpr: [0, 0, 0, 0, ${LAYOUT.MIN_MEMORY}, 0, 0, 0], eip: ${LAYOUT.IMAGE_BASE}, eflags: 0x202 });
      v.run(0);
      console.log(v.pid);
      setInterval(() => {}, 1000);`;
    const root = fileURLToPath(new URL('../../../..', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((r) => child.once('exit', r));
    const pid = await new Promise<number>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      setTimeout(() => reject(new Error('the helper did not start a tender')), 30_000);
    });
    expect(pid).toBeGreaterThan(0);
    const gone = (): boolean => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return /\) [ZX] /.test(stat);
      } catch {
        return true;
      }
    };
    expect(gone()).toBe(false);
    child.kill('SIGKILL');
    await exited;
    const t0 = Date.now();
    while (!gone() && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    expect(gone()).toBe(true);
  }, 60_000);
});
