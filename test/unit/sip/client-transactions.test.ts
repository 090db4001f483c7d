import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { SystemClock } from '../../../src/runtime/clock.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { readEssentials } from '../../../src/usages/sip/message/check.js';
import { parseSipMessage } from '../../../src/usages/sip/message/parser.js';
import type { SipRequest } from '../../../src/usages/sip/message/sip-message.js';
import { ClientTransactions } from '../../../src/usages/sip/transactions/client-transactions.js';
import { SipTransport } from '../../../src/usages/sip/transport/sip-transport.js';

/*
 * A request sent over a TCP connection of our own that cannot be made (RFC 3261 s18.1.1 sends
 * large requests to other homes over TCP) fails at once as a transport error (s8.1.3.1: the
 * proxy answers 503 for that branch), instead of a silent 408 after Timer B's 32 s.
 */
test('a request on a TCP connection that is refused fails at once as a transport error', async () => {
  const transport = await SipTransport.open({ host: '127.0.0.1', port: 0 }, silentLogger);
  // A port that was free a moment ago: nothing listens there now.
  const probe = createServer();
  const port = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as { port: number }).port)));
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const clients = new ClientTransactions(transport, new SystemClock());
  const flow = transport.connect({ host: '127.0.0.1', port })!;
  const request = parseSipMessage(
    new TextEncoder().encode(`OPTIONS sip:home@127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:${transport.localAddress.port};branch=z9hG4bKtcp1\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:home@x>\r\nCall-ID: tcp-refused\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`),
  ) as SipRequest;
  const started = Date.now();
  const outcome = await new Promise<string>((resolve) => {
    clients.send(request, 'z9hG4bKtcp1', flow, { response: () => resolve('response'), timeout: () => resolve('timeout'), transportError: () => resolve('transport error') });
  });
  await transport.close();
  assert.equal(outcome, 'transport error');
  assert.ok(Date.now() - started < 5_000, `within ${Date.now() - started} ms, not Timer F's 32 s`);
});

test('a second CANCEL for one branch joins the first instead of starting a twin that steals its responses', () => {
  const sent: Uint8Array[] = [];
  const transport = { send: (_flow: unknown, bytes: Uint8Array) => (sent.push(bytes), true), onConnectFailed: () => {} } as unknown as SipTransport;
  const clients = new ClientTransactions(transport, new SystemClock());
  const cancel = parseSipMessage(
    new TextEncoder().encode('CANCEL sip:bob@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtwice\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:bob@x>\r\nCall-ID: twice\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n'),
  ) as SipRequest;
  const flow = { transport: 'UDP' as const, remote: { host: '127.0.0.1', port: 5070 } };
  let answered = 0;
  const first = clients.send(cancel, 'z9hG4bKtwice', flow, { response: () => answered++, timeout: () => {} });
  const second = clients.send(cancel, 'z9hG4bKtwice', flow, { response: () => answered++, timeout: () => {} });
  assert.equal(second, first);
  assert.equal(sent.length, 1, 'sent once');
  const ok = parseSipMessage(new TextEncoder().encode('SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtwice\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:bob@x>;tag=2\r\nCall-ID: twice\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n'));
  assert.equal(clients.receive(ok as never, readEssentials(ok)), true);
  assert.equal(answered, 1);
  first.terminate();
});

test('a non-INVITE request is resent every T2 once a provisional response came, not doubling from T1 as while Trying (s17.1.2.2)', () => {
  const sentAt: number[] = [];
  const clock = new VirtualClock();
  const transport = { send: () => (sentAt.push(clock.now()), true), onConnectFailed: () => {} } as unknown as SipTransport;
  const clients = new ClientTransactions(transport, clock);
  const message = parseSipMessage(
    new TextEncoder().encode('MESSAGE sip:bob@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtimere\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:bob@x>\r\nCall-ID: timer-e\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n'),
  ) as SipRequest;
  const tx = clients.send(message, 'z9hG4bKtimere', { transport: 'UDP', remote: { host: '127.0.0.1', port: 5070 } }, { response: () => {}, timeout: () => {} });
  clock.runUntil(clock.now() + 100); // sent at 0; the 100 Trying comes before the first resend
  const trying = parseSipMessage(new TextEncoder().encode('SIP/2.0 100 Trying\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtimere\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:bob@x>\r\nCall-ID: timer-e\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n'));
  clients.receive(trying as never, readEssentials(trying));
  clock.runUntil(clock.now() + 11_000);
  const start = sentAt[0];
  assert.deepEqual(sentAt.map((t) => t - start), [0, 500, 4_500, 8_500], 'the T1 already armed runs out, then every T2 (not 1, 2, 4 s)');
  tx.terminate();
});
