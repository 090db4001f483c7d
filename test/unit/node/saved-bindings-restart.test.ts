import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { SavedBindings } from '../../../src/node/saved-bindings.js';
import { SystemClock } from '../../../src/runtime/clock.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { parseSipMessage } from '../../../src/usages/sip/message/parser.js';
import type { SipMessage, SipRequest } from '../../../src/usages/sip/message/sip-message.js';
import { loopbackSipService, onSipMessages } from '../../helpers/sip-service.js';

/*
 * The whole way a TCP phone's registration survives a restart, on loopback: the phone registers
 * over its connection, the peer saves the binding and stops (the connection goes with it), a new
 * peer restores it from disk, and a call reaches the phone over a new connection to its Contact.
 * (saved-bindings.test.ts checks the file; proxy-phones.test.ts the reconnect on a binding made
 * by hand. Neither alone shows the two fit.)
 */
const root = mkdtempSync(path.join(tmpdir(), 'p2psip-restart-'));
const domain = 'smiths.example';
const clock = new SystemClock();
const closers: (() => unknown)[] = [];
after(async () => {
  for (const close of closers.reverse()) await close();
  rmSync(root, { recursive: true, force: true });
});

async function home() {
  const service = await loopbackSipService(domain);
  const saved = new SavedBindings(root, service.location, clock, silentLogger);
  const restored = saved.restore(() => true);
  closers.push(() => (saved.close(), service.close()));
  return { service, saved, restored };
}

function within<T>(ms: number, what: string, wait: (resolve: (value: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
    wait((value) => (clearTimeout(timer), resolve(value)));
  });
}

test('a TCP phone registered before a restart is called after it: saved, restored, and reached over a new connection to its Contact', async () => {
  const before = await home();
  assert.equal(before.restored, 0);
  // carol's phone listens at its Contact (s18.2.1) and registers over a connection of its own.
  const invites: { request: SipRequest; socket: Socket }[] = [];
  let invited: () => void = () => {};
  const listener = createServer((socket) => onSipMessages(socket, (m) => m.kind === 'request' && m.method === 'INVITE' && (invites.push({ request: m, socket }), invited())));
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  closers.push(() => listener.close());
  const listenPort = (listener.address() as { port: number }).port;
  const connection = connect(before.service.address.port, '127.0.0.1');
  await new Promise<void>((resolve) => connection.once('connect', resolve));
  const registered = within<SipMessage>(3_000, 'answer to REGISTER', (resolve) => onSipMessages(connection, resolve));
  connection.write(
    [
      `REGISTER sip:${domain} SIP/2.0`,
      `Via: SIP/2.0/TCP 127.0.0.1:${connection.localPort};branch=z9hG4bKreg1`,
      `From: <sip:carol@${domain}>;tag=r1`,
      `To: <sip:carol@${domain}>`,
      'Call-ID: reg-carol',
      'CSeq: 1 REGISTER',
      `Contact: <sip:carol@127.0.0.1:${listenPort};transport=tcp>`,
      'Expires: 600',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
  const answer = await registered;
  assert.equal(answer.kind === 'response' ? answer.status : answer.method, 200);

  // The router reboots: the peer stops (its bindings on disk), the phone's connection is gone.
  before.saved.close();
  await before.service.close();
  connection.destroy();
  const after = await home();
  assert.equal(after.restored, 1, 'carol\'s binding came back from disk');

  const alice = createSocket('udp4');
  await new Promise<void>((resolve) => alice.bind(0, '127.0.0.1', resolve));
  closers.push(() => alice.close());
  const busy = within<void>(6_000, '486 at the caller', (resolve) =>
    alice.on('message', (bytes) => {
      const m = parseSipMessage(new Uint8Array(bytes));
      if (m.kind === 'response' && m.status === 486) resolve();
    }),
  );
  const ringing = within<void>(3_000, 'INVITE at the phone', (resolve) => (invited = resolve));
  alice.send(
    [
      `INVITE sip:carol@${domain} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${alice.address().port};branch=z9hG4bKinv1;rport`,
      'Max-Forwards: 70',
      `From: <sip:alice@${domain}>;tag=a1`,
      `To: <sip:carol@${domain}>`,
      'Call-ID: after-restart',
      'CSeq: 1 INVITE',
      `Contact: <sip:alice@127.0.0.1:${alice.address().port}>`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
    after.service.address.port,
    '127.0.0.1',
  );
  await ringing;
  const [{ request, socket }] = invites;
  assert.equal(request.headers.get('Call-ID'), 'after-restart');
  assert.notEqual(socket.remotePort, connection.remotePort, 'over a new connection');
  socket.write(
    [
      'SIP/2.0 486 Busy Here',
      ...request.headers.getAll('Via').map((v) => `Via: ${v}`),
      `From: ${request.headers.get('From')}`,
      `To: ${request.headers.get('To')};tag=busy`,
      `Call-ID: ${request.headers.get('Call-ID')}`,
      `CSeq: ${request.headers.get('CSeq')}`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
  await busy;
  socket.destroy();
});
