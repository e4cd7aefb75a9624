import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildService } from '@denali/ilwaco-sdk';
import { checkInstanceName, generateInstanceName, isListening, runtimeDir, socketPath } from '@denali/yakima';
import { resolveInstance, type VmCounters } from './control/client.js';
import type { RunOptions } from './run-command.js';

/** How long `--detach` waits for the background instance to open its socket, in ms. */
const DETACH_WAIT_MS = 60_000;

/**
 * `denali run --host NAME TARGET...`: boot each target on a running instance (building service
 * directories first) and print the new VMs' names. `name` names the VM (one target only).
 * @throws Error when the instance is not running or refuses an image (its message).
 */
export async function addToHost(host: string | undefined, targets: string[], opts: RunOptions & { vmName?: string }): Promise<number> {
  if (opts.vmName !== undefined && targets.length > 1) throw new Error('--name names one VM: give one target with --host');
  if (opts.publish?.length || opts.net || opts.quantum !== undefined || opts.backend !== 'auto') {
    throw new Error('--host adds VMs to a running instance: -p, --net, --quantum and --backend are set when the instance starts (denali serve)');
  }
  const client = await resolveInstance(host);
  let buildDir: string | undefined;
  try {
    for (const t of targets) {
      const st = await stat(t).catch(() => {
        throw new Error(`'${t}' does not exist (expected a .dni image or a service directory)`);
      });
      let image = resolve(t);
      if (st.isDirectory()) {
        buildDir ??= await mkdtemp(join(tmpdir(), 'denali-run-'));
        image = (await buildService(t, { out: join(buildDir, `${Date.now()}.dni`), quiet: true })).imagePath;
      }
      const body: Record<string, unknown> = { image };
      if (opts.vmName !== undefined) body.name = opts.vmName;
      if (opts.args !== undefined) body.args = opts.args;
      if (opts.memorySize !== undefined) body.memoryBytes = opts.memorySize;
      const vm = await client.call<VmCounters>('POST', '/v1/vms', body);
      process.stdout.write(`${client.name}/${vm.name}\n`);
    }
  } finally {
    if (buildDir) await rm(buildDir, { recursive: true, force: true });
  }
  return 0;
}

/**
 * `denali run --detach` / `denali serve --detach`: start `denali serve` in the background
 * (its own session, console and notices to `<runtime dir>/<name>.log`), wait until its control
 * socket answers, and print the instance name.
 * @param serveArgs the `serve` arguments except `--name` (targets already absolute).
 * @throws Error with the end of the log when the instance fails to start.
 */
export async function detach(name: string | undefined, serveArgs: string[]): Promise<number> {
  const instance = name ?? generateInstanceName();
  checkInstanceName(instance);
  const sock = socketPath(instance);
  if (await isListening(sock)) throw new Error(`an instance named '${instance}' is already running`);
  const log = join(runtimeDir(), `${instance}.log`);
  const fd = openSync(log, 'w', 0o600);
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'serve', '--name', instance, ...serveArgs], {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, DENALI_DETACHED: '1' },
  });
  closeSync(fd);
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  const deadline = Date.now() + DETACH_WAIT_MS;
  while (!(await isListening(sock))) {
    if (exited !== undefined || Date.now() > deadline) {
      if (exited === undefined) child.kill('SIGTERM');
      const tail = readFileSync(log, 'utf8').trim().split('\n').slice(-5).join('\n');
      throw new Error(`instance ${instance} did not start${tail ? `:\n${tail}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.unref();
  process.stdout.write(`${instance}\n`);
  process.stderr.write(`denali: instance ${instance} runs in the background (pid ${child.pid}, log ${log}); denali stop ${instance} ends it\n`);
  return 0;
}
