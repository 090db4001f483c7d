import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { silentLogger } from '../../../src/runtime/log.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';
import { checkRequest } from '../../../src/usages/sip/message/check.js';
import { parseSipMessage } from '../../../src/usages/sip/message/parser.js';
import type { SipRequest } from '../../../src/usages/sip/message/sip-message.js';
import { ServerTransactions } from '../../../src/usages/sip/transactions/server-transactions.js';
import { SipStreamFramer } from '../../../src/usages/sip/transport/stream-framer.js';
import { SipTransport } from '../../../src/usages/sip/transport/sip-transport.js';
import { sourceBlock } from '../../../src/wire/address.js';

/*
 * What a stranger on a SIP port can hold (found by an attacker's review): a stream that lost its
 * framing is read no further; a client that never reads what it asked for is cut; one host
 * holds at most 16 connections; the framer's work grows with the bytes given, however they are
 * cut; and server transactions, kept 32 s each, hold at most 4 MiB, making room from those
 * already answered and never from a call still ringing.
 */
const encoder = new TextEncoder();
const options = (n: number, extra = '') =>
  `OPTIONS sip:home@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKs${n}\r\nMax-Forwards: 70\r\nFrom: <sip:a@x>;tag=${n}\r\nTo: <sip:home@x>\r\nCall-ID: s${n}\r\nCSeq: 1 OPTIONS\r\n${extra}Content-Length: 0\r\n\r\n`;

test('the framer gives the same messages however the stream is cut, byte by byte too, and counts what is pending', () => {
  const stream = encoder.encode(`\r\n\r\n${options(1)}\r\n${options(2)}\r\n`);
  const whole = new SipStreamFramer().push(stream);
  const framer = new SipStreamFramer();
  const trickled = [...stream].flatMap((byte) => framer.push(new Uint8Array([byte])));
  assert.deepEqual(
    trickled.map((item) => (item.kind === 'ping' ? 'ping' : item.message.headers.get('Call-ID'))),
    ['ping', 's1', 's2'],
    'a ping cut after its first CRLF is still a ping; a pong before a message is skipped',
  );
  assert.deepEqual(trickled, whole);
  assert.equal(framer.pending, 0, 'a CRLF waiting to be told from half a ping is not an unfinished message');
  framer.push(encoder.encode(options(3).slice(0, 40)));
  assert.equal(framer.pending, 40, "the held CRLF was a pong: only the message's 40 bytes are pending");
});

test('a ping split across two reads is answered once, and a lone CRLF keepalive is never an unfinished message', () => {
  const framer = new SipStreamFramer();
  assert.deepEqual(framer.push(encoder.encode('\r\n')), []);
  assert.equal(framer.pending, 0);
  assert.deepEqual(framer.push(encoder.encode('\r\n')), [{ kind: 'ping' }]);
  assert.deepEqual(framer.push(encoder.encode('\r\n')), []);
  const [item] = framer.push(encoder.encode(options(4)));
  assert.equal(item?.kind === 'message' && item.message.headers.get('Call-ID'), 's4');
  assert.equal(framer.pending, 0);
});

test("a ping whose first bytes end a read after a 4 KiB message is still a ping when the framer makes room: it was dropped, and the next message lost its framing (fuzz review F1)", () => {
  // The message and the ping's first bytes just fill the framer's first 4 KiB, so the next read makes it move what it holds.
  const large = options(6, `X-Padding: ${'p'.repeat(4096 - 3 - options(6, 'X-Padding: \r\n').length)}\r\n`);
  const stream = encoder.encode(`${large}\r\n\r\n${options(7)}`);
  for (const cut of [large.length + 1, large.length + 2, large.length + 3]) {
    const framer = new SipStreamFramer();
    const items = [...framer.push(stream.subarray(0, cut)), ...framer.push(stream.subarray(cut))];
    assert.deepEqual(
      items.map((item) => (item.kind === 'ping' ? 'ping' : item.message.headers.get('Call-ID'))),
      ['s6', 'ping', 's7'],
      `cut ${cut - large.length} bytes into the ping`,
    );
  }
});

test('the room one large message needed is given back once the connection is idle', () => {
  const framer = new SipStreamFramer();
  const small = framer.capacity;
  const large = encoder.encode(options(5, `X-Padding: ${'p'.repeat(60_000)}\r\n`));
  framer.push(large.subarray(0, 30_000));
  assert.ok(framer.capacity >= 30_000);
  const items = framer.push(large.subarray(30_000));
  assert.equal(items.length, 1);
  assert.equal(framer.capacity, small);
});

test('a stream that grows past 64 KiB without a whole message is refused', () => {
  const framer = new SipStreamFramer();
  const junk = new Uint8Array(16 * 1024).fill(0x41);
  assert.throws(() => {
    for (let i = 0; i < 5; i++) framer.push(junk);
  }, /Message Too Large/);
});

async function withTransport(run: (transport: SipTransport) => Promise<void>): Promise<void> {
  const transport = await SipTransport.open({ host: '127.0.0.1', port: 0 }, silentLogger);
  try {
    await run(transport);
  } finally {
    await transport.close();
  }
}

const open = (port: number) =>
  new Promise<Socket>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', reject);
  });
const closed = (socket: Socket, withinMs: number) =>
  new Promise<boolean>((resolve) => {
    if (socket.destroyed) return resolve(true);
    const timer = setTimeout(() => resolve(false), withinMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });

test('a connection that lost its framing is read no further and closed within seconds, and others are still served', { timeout: 20_000 }, async () => {
  await withTransport(async (transport) => {
    const received: string[] = [];
    transport.onMessage((message) => received.push(message.headers.get('Call-ID') ?? ''));
    const attacker = await open(transport.localAddress.port);
    attacker.on('error', () => {});
    const junk = Buffer.alloc(64 * 1024, 0x41);
    // Far more than the framer takes: before, every chunk was added and scanned again.
    for (let i = 0; i < 64 && !attacker.destroyed; i++) attacker.write(junk);
    assert.ok(await closed(attacker, 5_000), 'the connection was closed');
    assert.equal(transport.counters.malformed, 1, 'one framing error, nothing read after it');
    const phone = await open(transport.localAddress.port);
    phone.write(options(7));
    for (let i = 0; i < 50 && received.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    phone.destroy();
    assert.deepEqual(received, ['s7']);
  });
});

test('a client that sends keepalives and never reads the answers is cut off', { timeout: 30_000 }, async () => {
  await withTransport(async (transport) => {
    const reader = await open(transport.localAddress.port);
    reader.on('error', () => {});
    reader.pause(); // never reads: the pongs pile up in the peer
    const pings = Buffer.alloc(1024 * 1024, '\r\n\r\n');
    for (let i = 0; i < 64 && !reader.destroyed; i++) {
      if (!reader.write(pings)) await Promise.race([new Promise((resolve) => reader.once('drain', resolve)), closed(reader, 2_000)]);
    }
    assert.ok(await closed(reader, 5_000), 'cut');
    assert.ok(transport.counters.connectionsCut >= 1, JSON.stringify(transport.counters));
  });
});

test('one host holds at most 16 connections; the 17th is refused and the others stay', { timeout: 20_000 }, async () => {
  await withTransport(async (transport) => {
    const sockets = await Promise.all(Array.from({ length: 16 }, () => open(transport.localAddress.port)));
    const extra = await open(transport.localAddress.port);
    extra.on('error', () => {});
    assert.ok(await closed(extra, 3_000), 'the 17th is closed');
    assert.equal(transport.counters.connectionsRefused, 1);
    assert.ok(sockets.every((socket) => !socket.destroyed), 'the first 16 stay open');
    for (const socket of sockets) socket.destroy();
  });
  assert.equal(sourceBlock('2001:db8:1:2:aaaa::1'), sourceBlock('2001:db8:1:2:bbbb::2'), 'an IPv6 /64 is one host');
  assert.notEqual(sourceBlock('2001:db8:1:2::1'), sourceBlock('2001:db8:1:3::1'));
  assert.equal(sourceBlock('::ffff:198.18.0.1'), '198.18.0.1');
});

test("connections we open count against their host too: a stranger whose requests name port after port in Via, then hang up, gets 16 connections back for its 40 responses, and the peer's other hosts are still served", { timeout: 20_000 }, async () => {
  await withTransport(async (transport) => {
    const transactions = new ServerTransactions(transport, new VirtualClock());
    const waiting: { respond: (status: number, reason: string) => void }[] = [];
    transport.onMessage((message, flow) => {
      const tx = message.kind === 'request' ? transactions.receive(message, checkRequest(message), flow) : undefined;
      if (tx && typeof tx === 'object') waiting.push(tx);
    });
    // Forty requests, each over its own connection, each naming another port of the stranger's in Via; each connection closes unanswered.
    for (let i = 0; i < 40; i++) {
      const socket = await open(transport.localAddress.port);
      socket.write(options(i).replace('127.0.0.1:1;', `127.0.0.1:${20_000 + i};`));
      for (let t = 0; t < 100 && waiting.length <= i; t++) await new Promise((resolve) => setTimeout(resolve, 5));
      const gone = transport.counters.connectionsClosed;
      socket.destroy();
      for (let t = 0; t < 100 && transport.counters.connectionsClosed === gone; t++) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal(waiting.length, 40);
    const opened = transport.counters.connectionsOpened;
    // The answers go at once, each over a new connection to its Via port (s18.2.2): 16 are made, the rest refused.
    for (const tx of waiting) tx.respond(200, 'OK');
    assert.equal(transport.counters.connectionsOpened - opened, 16);
    assert.equal(transport.counters.connectionsRefused, 24);
    assert.ok(transport.connect({ host: '127.0.0.2', port: 9 }), 'another host still gets one');
  });
});

test('a connection of ours to a host that never answers its SYN is given up after 5 s, and told as failed (its requests fail at once, not after Timer B)', { timeout: 20_000 }, async () => {
  // A listener whose process is stopped, with a backlog of one: once its queue is full the kernel drops every SYN.
  const child = spawn(process.execPath, ['-e', "require('net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, function () { console.log(this.address().port) })"], { stdio: ['ignore', 'pipe', 'inherit'] });
  const fill: Socket[] = [];
  try {
    const port = await new Promise<number>((resolve) => child.stdout!.once('data', (data) => resolve(Number(String(data).trim()))));
    child.kill('SIGSTOP');
    for (let i = 0; i < 3; i++) fill.push(connect(port, '127.0.0.1').on('error', () => {}));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await withTransport(async (transport) => {
      const failed: number[] = [];
      transport.onConnectFailed((id) => failed.push(id));
      const started = Date.now();
      const flow = transport.connect({ host: '127.0.0.1', port })!;
      assert.ok(flow.connectionId !== undefined);
      for (let t = 0; t < 160 && failed.length === 0; t++) await new Promise((resolve) => setTimeout(resolve, 50));
      const waited = Date.now() - started;
      assert.deepEqual(failed, [flow.connectionId], 'told as a connection that could not be made');
      assert.ok(waited >= 4_900 && waited < 6_500, `given up after ${waited} ms`);
      assert.equal(transport.hasConnection(flow.connectionId!), false);
    });
  } finally {
    for (const socket of fill) socket.destroy();
    child.kill('SIGKILL');
  }
});

test('unfinished messages from many hosts together hold at most about 4 MiB, and a phone is still heard', { timeout: 30_000 }, async () => {
  await withTransport(async (transport) => {
    const received: string[] = [];
    transport.onMessage((message) => received.push(message.headers.get('Call-ID') ?? ''));
    // 80 connections from five loopback hosts, each holding 60 KiB of a head that never ends:
    // 4.7 MiB if all were kept.
    const hosts = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6'];
    const attackers = await Promise.all(
      hosts.flatMap((host) =>
        Array.from({ length: 16 }, () =>
          new Promise<Socket>((resolve, reject) => {
            const socket = connect({ port: transport.localAddress.port, host: '127.0.0.1', localAddress: host }, () => resolve(socket));
            socket.on('error', reject);
          }),
        ),
      ),
    );
    const junk = Buffer.alloc(60 * 1024, 0x41);
    for (const socket of attackers) {
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      socket.write(junk);
    }
    const cut = await Promise.all(attackers.map((socket) => closed(socket, 5_000)));
    const survivors = cut.filter((isCut) => !isCut).length;
    assert.ok(survivors >= 60 && survivors < 80, `${survivors} of 80 kept`);
    assert.ok(transport.unframedBytes <= 4 * 1024 * 1024, `${transport.unframedBytes} bytes held`);
    const phone = await open(transport.localAddress.port);
    phone.write(options(8));
    for (let i = 0; i < 50 && received.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(received, ['s8']);
    for (const socket of [...attackers, phone]) socket.destroy();
    for (let i = 0; i < 50 && transport.unframedBytes > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(transport.unframedBytes, 0, 'every closed connection gave its share back');
  });
});

test('server transactions hold at most 4 MiB: answered ones make room, a ringing INVITE stays, and when all wait the new request is "full"', () => {
  const sent: Uint8Array[] = [];
  const transport = { send: (_flow: unknown, bytes: Uint8Array) => (sent.push(bytes), true) } as unknown as SipTransport;
  const transactions = new ServerTransactions(transport, new VirtualClock());
  const flow = { transport: 'UDP' as const, remote: { host: '198.18.0.9', port: 5060 } };
  const request = (text: string) => {
    const message = parseSipMessage(encoder.encode(text)) as SipRequest;
    return [message, checkRequest(message)] as const;
  };
  const invite = request(options(0).replace(/OPTIONS/g, 'INVITE'));
  const ringing = transactions.receive(invite[0], invite[1], flow);
  assert.ok(ringing && typeof ringing === 'object');
  ringing.respond(180, 'Ringing');
  const padding = `Subject: ${'x'.repeat(30_000)}\r\n`; // about 30 KB a request, as in the attack
  let refused = 0;
  for (let n = 1; n <= 1_000; n++) {
    const [message, checked] = request(options(n, padding));
    const tx = transactions.receive(message, checked, flow);
    if (tx === 'full') refused++;
    else if (tx && typeof tx === 'object') tx.respond(200, 'OK');
    assert.ok(transactions.heldBytes <= 4 * 1024 * 1024, `held ${transactions.heldBytes}`);
  }
  assert.equal(refused, 0, 'answered transactions made room');
  assert.ok(transactions.inviteFor(invite[0], invite[1]) === ringing, 'the ringing INVITE is still there');
  // Requests nobody has answered yet (forwarded and waiting) cannot be pushed out: new ones are refused.
  for (let n = 2_000; n < 2_200; n++) {
    const [message, checked] = request(options(n, padding));
    if (transactions.receive(message, checked, flow) === 'full') refused++;
  }
  assert.ok(refused > 0 && transactions.refusedFull === refused, `refused ${refused}`);
  assert.ok(transactions.inviteFor(invite[0], invite[1]) === ringing);
  assert.ok(transactions.heldBytes <= 4 * 1024 * 1024);
});
