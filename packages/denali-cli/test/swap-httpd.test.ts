/**
 * httpd under swapping and cloning, in process over the virtual switch: a swapped-out VM
 * answers byte-identically once a request swaps it in; clones of one booted VM each get
 * their own VM id, MAC and IPv4 address and each answers on its own.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAYOUT, readImageFile, VREG_RO, type DenaliImage } from '@denali/image-format';
import { buildService } from '@denali/ilwaco-sdk';
import { probeProcessBackend, VirtualHost, Yakima, type Vm } from '@denali/yakima';
import { root } from './helpers.js';
import { httpGet } from './httpd-http.js';

const dir = mkdtempSync(join(tmpdir(), 'denali-swap-httpd-'));
let image: DenaliImage;

beforeAll(async () => {
  const built = await buildService(join(root, 'examples/httpd'), { out: join(dir, 'httpd.dni'), quiet: true });
  image = await readImageFile(built.imagePath);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const addressOf = (y: Yakima, vm: Vm): number => y.net!.addressOf(vm.id);

const proc = probeProcessBackend();

describe('httpd and swapping', () => {
  async function swappedAnswers(backend: 'emu' | 'process'): Promise<void> {
    const y = new Yakima({ backend, network: true, swapDir: dir });
    const host = new VirtualHost(y.net!);
    const vm = y.addVm(image, { args: ['80', '2'] });
    const done = y.run();
    try {
      await until(() => vm.state === 'idle', 'httpd to boot');
      const first = await httpGet(host, addressOf(y, vm), '/index.html');
      expect(first.toString('latin1')).toMatch(/^HTTP\/1\.[01] 200 /);
      await until(() => vm.state === 'idle', 'httpd to idle');
      await y.swapOut(vm);
      expect(vm.state).toBe('swapped');
      expect(vm.residentBytes()).toBeLessThanOrEqual(4096);
      const again = await httpGet(host, addressOf(y, vm), '/index.html');
      expect(again.equals(first)).toBe(true);
      expect(y.swapStats()).toMatchObject({ swapOuts: 1, swapIns: 1, failures: 0 });
    } finally {
      y.stop();
      await done;
      await y.close();
    }
  }

  it('a swapped-out httpd VM answers a request byte-identically', async () => {
    await swappedAnswers('emu');
  }, 120_000);

  it.skipIf(!proc.usable)(`a swapped-out httpd VM answers a request byte-identically on the process backend${proc.usable ? '' : ` (skipped: ${proc.reason})`}`, async () => {
    await swappedAnswers('process');
  }, 120_000);

  async function clonesAnswer(backend: 'emu' | 'process'): Promise<void> {
    const y = new Yakima({ backend, network: true, swapDir: dir });
    const host = new VirtualHost(y.net!);
    const vms = y.addVms(image, 5, { args: ['80', '2'] });
    const done = y.run();
    try {
      expect(new Set(vms.map((v) => v.id)).size).toBe(5);
      expect(new Set(vms.map((v) => Buffer.from(v.nic!.mac).toString('hex'))).size).toBe(5);
      // The parent boots; at its first IDLE its memory becomes the clones' template.
      await until(() => vms.every((v) => v.state === 'swapped'), 'the clone template');
      // A request to one clone swaps in that clone only (its ARP request is not flooded to all).
      await httpGet(host, addressOf(y, vms[2]!), '/index.html');
      expect(vms.map((v) => v.state === 'swapped')).toEqual([true, true, false, true, true]);
      const answers = [];
      for (const vm of vms) answers.push(await httpGet(host, addressOf(y, vm), '/index.html'));
      for (const a of answers) expect(a.equals(answers[0]!)).toBe(true);
      expect(answers[0]!.toString('latin1')).toMatch(/^HTTP\/1\.[01] 200 /);
      for (const vm of vms) {
        expect(vm.nic!.stats.txFrames, `VM ${vm.id} answered itself`).toBeGreaterThan(0);
        if (vm.state === 'swapped') await y.swapIn(vm);
        const ro = LAYOUT.VREG_RO_BASE;
        expect(vm.memory.dv.getUint32(ro + VREG_RO.VM_ID, true)).toBe(vm.id);
        expect(vm.memory.dv.getUint32(ro + VREG_RO.IPV4_ADDR, false)).toBe(addressOf(y, vm));
        expect(Buffer.from(vm.memory.u8.subarray(ro + VREG_RO.MAC, ro + VREG_RO.MAC + 6)).equals(Buffer.from(vm.nic!.mac))).toBe(true);
      }
      // Only the parent ran main(): the clones started from its post-boot state.
      expect(vms.slice(1).every((v) => v.console.bytesWritten === 0)).toBe(true);
    } finally {
      y.stop();
      await done;
      await y.close();
    }
  }

  it('an httpd serving requests one at a time swaps out one worker\'s stack and buffers, not all eight', async () => {
    // examples/httpd/pool.c: the worker that went idle last takes the next connection. With the
    // workers taking turns, 24 sequential requests touched all 8 stacks and buffer sets and the
    // second record below grew by about 150 KiB; with one worker it grows by the TCBs its
    // TIME-WAIT connections keep (about 0.5 KiB each) and little else.
    const y = new Yakima({ backend: 'emu', network: true, swapDir: dir });
    const host = new VirtualHost(y.net!);
    const [, vm] = y.addVms(image, 2, { args: ['80', '8'] });
    const done = y.run();
    try {
      const record = async (): Promise<number> => {
        await until(() => vm!.state === 'idle', 'httpd to idle');
        const before = y.swapStats().bytesWritten;
        await y.swapOut(vm!);
        return y.swapStats().bytesWritten - before;
      };
      await until(() => vm!.state === 'swapped', 'the clone template');
      expect((await httpGet(host, addressOf(y, vm!), '/index.html')).toString('latin1')).toMatch(/^HTTP\/1\.[01] 200 /);
      const one = await record();
      for (let i = 0; i < 24; i++) await httpGet(host, addressOf(y, vm!), '/index.html');
      const many = await record();
      expect(y.swapStats().failures).toBe(0);
      expect(many - one, `record after 1 request ${one} B, after 25 ${many} B`).toBeLessThan(48 * 1024);
    } finally {
      y.stop();
      await done;
      await y.close();
    }
  }, 120_000);

  it('clones of one booted httpd get distinct addresses and each answers on its own', async () => {
    await clonesAnswer('emu');
  }, 120_000);

  it.skipIf(!proc.usable)(`clones of one booted httpd get distinct addresses and each answers on its own on the process backend${proc.usable ? '' : ` (skipped: ${proc.reason})`}`, async () => {
    await clonesAnswer('process');
  }, 120_000);
});
