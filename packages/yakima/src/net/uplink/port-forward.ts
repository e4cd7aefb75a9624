/**
 * `-p/--publish` forward specifications of `denali run`.
 *
 * Grammar: `HOST_PORT:GUEST_PORT` or `HOST_PORT:GUEST:GUEST_PORT`, optionally followed by
 * `/tcp` (only TCP is forwarded). `GUEST` picks the VM that receives the connections:
 * - omitted: the first VM of the instance (the one added first, VM id 1);
 * - a positive integer `n`: the n-th VM added (VM id n, address = subnet base + n + 1),
 *   e.g. `-p 8081:2:80` → the second VM's port 80;
 * - anything else: the VM with that display name, e.g. `-p 8080:web:80`.
 * The VM is looked up when each host connection arrives, so forwards may name VMs that are
 * added later; a connection for a VM that does not exist (or has finished) is reset.
 */
export interface PortForward {
  /** Port on the host's loopback address (1..65535). */
  hostPort: number;
  /** TCP port inside the guest (1..65535). */
  guestPort: number;
  /** VM name, or 1-based VM index (= VM id). Undefined: the first VM. */
  guest?: string | number;
}

const PORT = /^\d{1,5}$/;

function port(text: string, what: string, spec: string): number {
  const n = PORT.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= 65_535)) throw new RangeError(`-p ${spec}: ${what} '${text}' is not a port number 1..65535`);
  return n;
}

/**
 * Parse one `-p` value (see the module doc for the grammar).
 * @throws RangeError naming the text, e.g. for `-p 80`, `-p 0:80`, `-p 8080:80/udp`.
 */
export function parsePortForward(spec: string): PortForward {
  let text = spec.trim();
  const proto = /\/(\w+)$/.exec(text);
  if (proto) {
    if (proto[1]!.toLowerCase() !== 'tcp') throw new RangeError(`-p ${spec}: only tcp is forwarded, not ${proto[1]}`);
    text = text.slice(0, -proto[0].length);
  }
  const parts = text.split(':');
  if (parts.length !== 2 && parts.length !== 3) {
    throw new RangeError(`-p ${spec}: expected HOST_PORT:GUEST_PORT or HOST_PORT:VM:GUEST_PORT (VM = name or 1-based index)`);
  }
  const hostPort = port(parts[0]!, 'host port', spec);
  const guestPort = port(parts[parts.length - 1]!, 'guest port', spec);
  if (parts.length === 2) return { hostPort, guestPort };
  const g = parts[1]!;
  if (g === '') throw new RangeError(`-p ${spec}: empty VM name`);
  if (/^\d+$/.test(g)) {
    const n = Number(g);
    if (n < 1) throw new RangeError(`-p ${spec}: VM index ${g} must be 1 or more`);
    return { hostPort, guestPort, guest: n };
  }
  if (!/^[\w.@+-]+$/.test(g)) throw new RangeError(`-p ${spec}: '${g}' is not a VM name`);
  return { hostPort, guestPort, guest: g };
}

/** Text form of a forward, as `parsePortForward` accepts it. */
export function formatPortForward(f: PortForward): string {
  return f.guest === undefined ? `${f.hostPort}:${f.guestPort}` : `${f.hostPort}:${f.guest}:${f.guestPort}`;
}
