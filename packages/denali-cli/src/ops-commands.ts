import { ControlClient, ControlError, liveInstances, NO_INSTANCE, resolveInstance, resolveVm, type InstanceInfo, type VmCounters } from './control/client.js';
import { formatBytes, formatDuration, formatTable } from './control/format.js';

/**
 * `denali ps [INSTANCE] [--json]`: every running instance (or the named one) and its VMs.
 * JSON: `[{instance: Instance, vms: Vm[]}]` (shapes of openapi.json). An empty list when none runs
 * (the text form says so on stderr).
 */
export async function psCommand(instance: string | undefined, json: boolean): Promise<number> {
  const names = instance !== undefined ? [(await resolveInstance(instance)).name] : await liveInstances();
  const found: { instance: InstanceInfo; vms: VmCounters[] }[] = [];
  for (const n of names) {
    const c = new ControlClient(n);
    try {
      found.push({ instance: await c.instance(), vms: await c.vms() });
    } catch (e) {
      if (!(e instanceof ControlError) || e.status !== 0) throw e; // it ended meanwhile
    }
  }
  if (json) {
    process.stdout.write(JSON.stringify(found, null, 2) + '\n');
    return 0;
  }
  if (found.length === 0) {
    process.stderr.write(`denali: ${NO_INSTANCE}\n`);
    return 0;
  }
  const rows: string[][] = [];
  for (const { instance: i, vms } of found) {
    rows.push([i.name, '-', `${i.backend}, pid ${i.pid}`, '', formatBytes(i.totals.residentBytes), formatDuration(i.uptimeSeconds), `${vms.length} VMs`]);
    for (const v of vms) {
      rows.push([i.name, v.name, stateText(v), `${(v.cpuShare * 100).toFixed(1)}%`, formatBytes(v.residentBytes), formatDuration(v.uptimeSeconds), v.image]);
    }
  }
  process.stdout.write(formatTable(['INSTANCE', 'VM', 'STATE', 'CPU', 'MEM', 'UPTIME', 'IMAGE'], rows));
  return 0;
}

/** A VM's state with its exit status or fault cause, as `exited (0)` or `faulted (memory)`. */
export function stateText(v: VmCounters): string {
  if (v.state === 'exited') return `exited (${v.exitStatus ?? 0})`;
  if (v.state === 'faulted' && v.fault) return `faulted (${v.fault.cause})`;
  return v.state;
}

/**
 * `denali stop TARGET...`: each TARGET is an instance (all its VMs stop and it exits) or a VM
 * (`VM` or `INSTANCE/VM`). Prints each target stopped.
 * @throws Error naming a target that is neither.
 */
export async function stopCommand(targets: string[], host: string | undefined): Promise<number> {
  const live = await liveInstances();
  for (const t of targets) {
    if (host === undefined && !t.includes('/') && live.includes(t)) {
      await new ControlClient(t).call('POST', '/v1/instance/shutdown');
      process.stdout.write(`${t}\n`);
      continue;
    }
    const { client, vm } = await resolveVm(t, host);
    await client.action(vm, 'stop');
    process.stdout.write(`${t}\n`);
  }
  return 0;
}

/**
 * `denali logs [-f] VM`: the VM's recent console output (the tail Yakima keeps); with
 * `follow`, then its output as it comes until the VM ends or Ctrl-C.
 */
export async function logsCommand(ref: string, opts: { follow: boolean; host?: string; bytes?: number }): Promise<number> {
  const { client, vm } = await resolveVm(ref, opts.host);
  const q = new URLSearchParams();
  if (opts.bytes !== undefined) q.set('bytes', String(opts.bytes));
  if (opts.follow) q.set('follow', 'true');
  const res = await client.open('GET', `/v1/vms/${encodeURIComponent(vm)}/console?${q}`);
  if ((res.statusCode ?? 0) >= 400) {
    const chunks: Buffer[] = [];
    for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
    let msg = `HTTP ${res.statusCode}`;
    try {
      msg = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error: string }).error;
    } catch {
      /* keep the status */
    }
    throw new Error(msg);
  }
  const onSigint = (): void => {
    res.destroy();
  };
  process.once('SIGINT', onSigint);
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once('drain', r));
    }
  } catch {
    /* Ctrl-C or the instance ended */
  } finally {
    process.off('SIGINT', onSigint);
  }
  return 0;
}
