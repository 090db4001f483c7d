import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import { udpMediaSockets } from '../../../src/node/media-sockets.js';
import { silentLogger } from '../../../src/runtime/log.js';

/* The anchor's media ports on real UDP: a port another program holds is passed over and costs nothing. */
const udpSockets = () => (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo().filter((name) => name === 'UDPWrap').length;

test('a media port another program holds is reported taken, and each try closes its socket: one descriptor was left per try, every pass round the pool (leak review F2)', async () => {
  const holder = createSocket('udp4');
  await new Promise<void>((resolve) => holder.bind(0, '127.0.0.1', resolve));
  const taken = holder.address().port;
  try {
    const open = udpMediaSockets('127.0.0.1', silentLogger);
    const before = udpSockets();
    for (let i = 0; i < 20; i++) assert.equal(await open(taken, () => {}), undefined);
    for (let i = 0; i < 20 && udpSockets() > before; i++) await new Promise((resolve) => setTimeout(resolve, 25)); // a handle closes a tick or two later
    assert.equal(udpSockets(), before, 'no socket left open by the tries');
    const free = await open(0, () => {});
    assert.ok(free, 'a free port opens');
    free.close();
  } finally {
    holder.close();
  }
});
