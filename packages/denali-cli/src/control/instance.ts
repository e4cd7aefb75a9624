import { generateInstanceName, startControlServer, type Backend, type ConsoleTailSink, type ControlServer, type Yakima } from '@denali/yakima';
import { VERSION } from '../version.js';

/**
 * Give a Yakima instance its control socket (every instance has one: `denali run`, `serve`).
 * @param name the instance name (`--name`), or undefined to generate one.
 * @returns the server; its name is `name` or the generated one.
 * @throws Error when the name is bad or already in use.
 */
export async function openControl(
  yakima: Yakima,
  opts: { name?: string; tail: ConsoleTailSink; backend: Backend; onShutdown?: () => void },
): Promise<ControlServer & { name: string }> {
  const name = opts.name ?? generateInstanceName();
  const server = await startControlServer(yakima, { name, tail: opts.tail, backend: opts.backend, version: VERSION, onShutdown: opts.onShutdown });
  return Object.assign(server, { name });
}
