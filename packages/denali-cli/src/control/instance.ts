import { generateInstanceName, startControlServer, type Backend, type ConsoleTailSink, type ControlServer, type Yakima } from '@denali/yakima';
import { VERSION } from '../version.js';

/**
 * Give a Yakima instance its control socket (every instance has one: `denali run`, `serve`).
 * @param opts.name the instance name (`--name`), or undefined to generate one.
 * @param opts.required when false (a plain `denali run`), a socket that cannot be made (e.g. an
 *   unusable runtime directory) is a one-line note on stderr and the run goes on without it.
 * @returns the server (its name is `name` or the generated one), or undefined as above.
 * @throws Error when required and the name is bad or in use, or the socket cannot be made.
 */
export async function openControl(
  yakima: Yakima,
  opts: { name?: string; tail: ConsoleTailSink; backend: Backend; onShutdown?: () => void; required?: boolean },
): Promise<(ControlServer & { name: string }) | undefined> {
  const name = opts.name ?? generateInstanceName();
  try {
    const server = await startControlServer(yakima, { name, tail: opts.tail, backend: opts.backend, version: VERSION, onShutdown: opts.onShutdown });
    return Object.assign(server, { name });
  } catch (e) {
    if (opts.required !== false) throw e;
    process.stderr.write(`denali: note: no control socket for this run: ${e instanceof Error ? e.message : String(e)}\n`);
    return undefined;
  }
}
