// Child of tap-privileges.test.ts, run without CAP_NET_ADMIN: prints the probe and the error.
import { Yakima } from '../../src/control/yakima.js';
import { attachTapUplink, probeTap } from '../../src/net/uplink/tap-uplink.js';

const p = probeTap();
console.log(`probe: ${p.usable ? 'usable' : p.reason}`);
try {
  const t = await attachTapUplink(new Yakima({ network: true }));
  console.log('error: none');
  await t.close();
} catch (e) {
  console.log(`error: ${(e as Error).message}`);
}
