import { createElement } from 'react';
import { render } from 'ink';
import { resolveInstance, type ControlClient } from '../control/client.js';
import { TopApp, type TopSource } from './TopApp.js';
import { SUMMARY_FIELDS, type VmSummary } from './model.js';

/** A `TopSource` over an instance's control socket. */
export function controlSource(client: ControlClient): TopSource {
  return {
    name: client.name,
    async sample() {
      const [instance, { vms }] = await Promise.all([
        client.instance(),
        client.call<{ vms: VmSummary[] }>('GET', `/v1/vms?fields=${SUMMARY_FIELDS.join(',')}`),
      ]);
      return { instance, vms, at: performance.now() };
    },
    action: (vm, action) => client.action(vm, action),
    vm: (name) => client.call('GET', `/v1/vms/${encodeURIComponent(name)}`),
    consoleTail: (vm, bytes) => client.consoleTail(vm, bytes),
  };
}

/**
 * `denali top [INSTANCE]`: the live view until `q`. Needs a terminal.
 * @throws Error when no instance (or not the named one) is running, or stdout is not a terminal.
 */
export async function topCommand(instance: string | undefined, intervalMs: number): Promise<number> {
  const client = await resolveInstance(instance);
  if (!process.stdout.isTTY || !process.stdin.isTTY) throw new Error('denali top needs a terminal (for a script, use denali ps --json)');
  const color = !process.env.NO_COLOR;
  const app = render(createElement(TopApp, { source: controlSource(client), intervalMs, color }), { exitOnCtrlC: false });
  await app.waitUntilExit();
  return 0;
}
