import { createElement } from 'react';
import { resolveInstance, type ControlClient } from '../control/client.js';
import type { TopSource } from './TopApp.js';
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
  const { render, TopApp } = await loadInkLive();
  const app = render(createElement(TopApp, { source: controlSource(client), intervalMs, color }), { exitOnCtrlC: false });
  await app.waitUntilExit();
  return 0;
}

/**
 * Loads ink (and the view built on it) so that it redraws every frame. ink decides once, when its
 * module is first evaluated, whether it runs under CI (the `CI` or `CONTINUOUS_INTEGRATION`
 * variable, package is-in-ci) and then draws only the last frame at exit; an operator at a
 * terminal inside a CI shell would see a blank screen. `top` has already checked that it owns a
 * terminal, so those variables are hidden while ink loads and restored afterwards. ink is only
 * ever loaded from here (the bundle keeps it lazy), so no earlier import has fixed the answer.
 */
async function loadInkLive() {
  const hidden = ['CI', 'CONTINUOUS_INTEGRATION'].map((k) => [k, process.env[k]] as const);
  for (const [k] of hidden) delete process.env[k];
  try {
    const [{ render }, { TopApp }] = await Promise.all([import('ink'), import('./TopApp.js')]);
    return { render, TopApp };
  } finally {
    for (const [k, v] of hidden) if (v !== undefined) process.env[k] = v;
  }
}
