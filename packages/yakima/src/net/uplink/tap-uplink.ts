import { execFile } from 'node:child_process';
import { closeSync } from 'node:fs';
import { ETH_FRAME_MAX } from '@denali/image-format';
import { formatIPv4 } from '../network.js';
import type { SwitchPort } from '../switch.js';
import { claimAddress, releaseAddress } from './claims.js';
import { TapError, TapReader, openTapDevice, writeTapFrame, type TapDevice } from './tun.js';
import type { UplinkTarget } from './user-uplink.js';

/** Options of `attachTapUplink`. */
export interface TapUplinkOptions {
  /** Interface name, at most 15 bytes, may contain `%d`. Default `denali%d`. */
  name?: string;
  /**
   * Create and configure the device inside this network namespace (made beforehand with
   * `ip netns add NAME`); the host's kernel side then lives only there. Default: the current one.
   */
  netns?: string;
  /** The host's address on the virtual subnet (host order). Default the gateway. */
  address?: number;
  /** Run `ip` to bring the link up and assign `address/prefix`. Default true. */
  configure?: boolean;
}

/** Counters of a TAP uplink. */
export interface TapStats {
  /** Frames read from the device and handed to the switch, and their bytes. */
  framesIn: number;
  bytesIn: number;
  /** Frames written to the device, and their bytes. */
  framesOut: number;
  bytesOut: number;
  /** Frames from the host longer than ETH_FRAME_MAX (dropped). */
  tooLong: number;
  /** Failed writes (device down or gone). */
  writeErrors: number;
}

/** A switch bridged to a host TAP device. */
export interface TapUplink {
  /** The interface name. */
  readonly name: string;
  /** The network namespace it lives in, if not the current one. */
  readonly netns: string | undefined;
  /** The host's IPv4 address on the subnet (host order) and its prefix length. */
  readonly address: number;
  readonly prefix: number;
  /** The switch port (an uplink: no fixed MAC, the switch learns the host's). */
  readonly port: SwitchPort;
  readonly stats: TapStats;
  /** Detach from the switch, delete the device and close its descriptor. */
  close(): Promise<void>;
}

/** First line of every "no privileges" error of `--net tap`. */
export const TAP_PRIVILEGE_HINT = '--net tap needs root or CAP_NET_ADMIN';

/** Run `ip ARGS…` (with `-n NETNS` when given). @throws Error with ip's stderr. */
export function runIp(args: string[], netns?: string): Promise<void> {
  const full = netns !== undefined ? ['-n', netns, ...args] : args;
  return new Promise((res, rej) => {
    execFile('ip', full, { timeout: 10_000 }, (err, _out, stderr) => {
      if (err) rej(new Error(`ip ${full.join(' ')}: ${String(stderr).trim() || err.message}`));
      else res();
    });
  });
}

function prefixOf(netmask: number): number {
  let n = 0;
  for (let m = netmask >>> 0; m & 0x80000000; m = (m << 1) >>> 0) n++;
  return n;
}

/**
 * Can this process create TAP devices? Opens and immediately closes one (it vanishes with its
 * descriptor). Never throws; `reason` is one line for a test's skip message.
 */
export function probeTap(): { usable: true } | { usable: false; reason: string } {
  try {
    const dev = openTapDevice({ name: 'dnprobe%d' });
    closeSync(dev.fd);
    return { usable: true };
  } catch (e) {
    return { usable: false, reason: `${TAP_PRIVILEGE_HINT} (${(e as Error).message})` };
  }
}

/**
 * Bridge the virtual switch to a new host TAP device (`--net tap`): every frame the switch
 * floods or addresses to a host MAC is written to the device, every frame the host sends is
 * handed to the switch, so the host's kernel reaches each VM at its own address with its own
 * TCP. The device gets `address/prefix` (default: the gateway address on the subnet), so the
 * host *is* the guests' gateway; a user-mode uplink on the same address is refused.
 *
 * Frames are read in batches by `TapReader` (poll(2) off the event loop, then non-blocking
 * reads) and written synchronously (TAP writes do not block).
 * @throws Error whose message starts with `TAP_PRIVILEGE_HINT` when /dev/net/tun is missing or
 * access is denied; Error when `ip` fails (the device is deleted again), when networking is off,
 * or when the address is already claimed by a user-mode uplink.
 */
export async function attachTapUplink(target: UplinkTarget, opts: TapUplinkOptions = {}): Promise<TapUplink> {
  const net = target.net;
  if (!net) throw new Error('--net tap needs networking: create Yakima with { network: true }');
  const address = opts.address ?? net.gateway;
  const prefix = prefixOf(net.netmask);
  let dev: TapDevice;
  try {
    dev = openTapDevice({ name: opts.name, netns: opts.netns });
  } catch (e) {
    if (e instanceof TapError && ['EPERM', 'EACCES', 'ENOENT', 'ENODEV'].includes(e.code)) {
      throw new Error(`${TAP_PRIVILEGE_HINT} (${e.message})`);
    }
    throw e;
  }
  const netns = opts.netns;
  const deleteDevice = () => runIp(['link', 'del', 'dev', dev.name], netns).catch(() => {});
  claimAddress(net, address, `TAP device ${dev.name}`);
  if (opts.configure ?? true) {
    try {
      await runIp(['link', 'set', 'dev', dev.name, 'mtu', '1500', 'up'], netns);
      await runIp(['addr', 'add', `${formatIPv4(address)}/${prefix}`, 'dev', dev.name], netns);
    } catch (e) {
      releaseAddress(net, address);
      await deleteDevice();
      closeSync(dev.fd);
      throw e;
    }
  }
  const stats: TapStats = { framesIn: 0, bytesIn: 0, framesOut: 0, bytesOut: 0, tooLong: 0, writeErrors: 0 };
  let closing = false;
  const port: SwitchPort = {
    name: `tap:${dev.name}`,
    deliver(frame) {
      if (closing) return;
      if (writeTapFrame(dev, frame)) {
        stats.framesOut++;
        stats.bytesOut += frame.length;
      } else stats.writeErrors++;
    },
  };
  net.switch.attach(port);

  const reader = new TapReader(dev, (frames) => {
    for (const f of frames) {
      if (closing) return;
      if (f.length > ETH_FRAME_MAX) stats.tooLong++;
      else if (f.length >= 14) {
        stats.framesIn++;
        stats.bytesIn += f.length;
        net.switch.forward(port, f);
      }
    }
  });
  reader.start();

  return {
    name: dev.name,
    netns,
    address,
    prefix,
    port,
    stats,
    async close() {
      if (closing) return;
      closing = true;
      net.switch.detach(port);
      releaseAddress(net, address);
      await reader.stop();
      await deleteDevice();
      closeSync(dev.fd);
    },
  };
}
