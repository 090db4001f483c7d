import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import type { Clock, TimerHandle } from '../../../src/runtime/clock.js';
import { parseSipMessage } from '../../../src/usages/sip/message/parser.js';
import type { SipMessage } from '../../../src/usages/sip/message/sip-message.js';
import { loopbackSipService } from '../../helpers/sip-service.js';

/*
 * RFC 4320 s4.1: a transaction-stateful element never sends 408 to a non-INVITE request. When
 * the phone a MESSAGE went to never answers, the sender's own Timer F ends its transaction; a late
 * 408 from us would only add load. The proxy's clock runs 100 times fast, so Timer F (32 s) takes 0.32 s.
 */
const SPEED = 100;
function fastClock(): Clock {
  const timers = new Map<number, NodeJS.Timeout>();
  let next = 1;
  return {
    now: () => performance.now() * SPEED,
    wallTime: () => Date.now(),
    setTimer(delayMs: number, fire: () => void): TimerHandle {
      const id = next++;
      timers.set(id, setTimeout(() => (timers.delete(id), fire()), delayMs / SPEED));
      return { id };
    },
    clearTimer(handle: TimerHandle | undefined): void {
      if (!handle) return;
      clearTimeout(timers.get(handle.id));
      timers.delete(handle.id);
    },
  };
}

test('a MESSAGE whose phone never answers gets no 408 (RFC 4320 s4.1); its retransmissions are still absorbed, not forwarded again', async () => {
  const domain = 'smiths.example';
  const service = await loopbackSipService(domain, { clock: fastClock(), nonceSecret: new Uint8Array(32).fill(3) });
  const sockets = [createSocket('udp4'), createSocket('udp4')];
  try {
    const inboxes: SipMessage[][] = [[], []];
    for (const [i, socket] of sockets.entries()) {
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
      socket.on('message', (m) => inboxes[i].push(parseSipMessage(new Uint8Array(m))));
    }
    const [alice, bob] = sockets;
    const send = (socket: typeof alice, lines: string[]) => socket.send(`${lines.join('\r\n')}\r\n\r\n`, service.address.port, '127.0.0.1');
    const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    send(bob, [`REGISTER sip:${domain} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${bob.address().port};branch=z9hG4bKreg1;rport`, 'Max-Forwards: 70', `From: <sip:bob@${domain}>;tag=b`, `To: <sip:bob@${domain}>`, 'Call-ID: reg-bob', 'CSeq: 1 REGISTER', `Contact: <sip:bob@127.0.0.1:${bob.address().port}>`, 'Expires: 3600', 'Content-Length: 0']);
    for (let i = 0; i < 100 && !inboxes[1].some((m) => m.kind === 'response' && m.status === 200); i++) await wait(10);
    const message = [`MESSAGE sip:bob@${domain} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${alice.address().port};branch=z9hG4bKmsg1;rport`, 'Max-Forwards: 70', `From: <sip:alice@${domain}>;tag=a`, `To: <sip:bob@${domain}>`, 'Call-ID: msg-1', 'CSeq: 1 MESSAGE', 'Content-Length: 0'];
    send(alice, message);
    await wait(600); // Timer F (32 s) at 100 times: bob never answered
    const forwarded = inboxes[1].filter((m) => m.kind === 'request' && m.method === 'MESSAGE').length;
    assert.ok(forwarded >= 1, 'the MESSAGE reached bob (and was retransmitted to him)');
    assert.deepEqual(inboxes[0].filter((m) => m.kind === 'response').map((m) => m.kind === 'response' && m.status), [], 'no 408, nor anything else, to alice');
    send(alice, message); // alice's own retransmission, late
    await wait(100);
    assert.equal(inboxes[1].filter((m) => m.kind === 'request' && m.method === 'MESSAGE').length, forwarded, 'absorbed, not a new request');
    assert.equal(inboxes[0].length, 0);
  } finally {
    for (const socket of sockets) socket.close();
    await service.close();
  }
});
