/**
 * The code a `new Worker(code, { eval: true })` runs to start the relay worker (relay-worker.ts).
 * From the TypeScript sources (tsx, vitest) it registers tsx's loader in the worker and imports
 * relay-worker.ts; in the CLI bundle, scripts/build-cli.mjs replaces this module with one that
 * returns relay-worker.ts already built (CommonJS), so the bundle needs no other file and no
 * TypeScript compiler — the way the KVM and process backends ship their worker code as text.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/** Source text (CommonJS, for `eval: true`) that starts the relay worker from `workerData`. */
export function relayWorkerScript(): string {
  // tsx's ES module API (its CommonJS one resolves its loader wrongly from eval code).
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const entry = new URL('./relay-worker.ts', import.meta.url).href;
  return `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });\n`;
}
