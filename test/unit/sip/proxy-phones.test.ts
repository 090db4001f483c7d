import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server as TcpServer, type Socket as TcpSocket } from 'node:net';
import { after, before, test } from 'node:test';
import { parseSipMessage } from '../../../src/usages/sip/message/parser.js';
import type { SipMessage, SipRequest, SipResponse } from '../../../src/usages/sip/message/sip-message.js';
import type { SipService } from '../../../src/usages/sip/sip-service.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { SystemClock } from '../../../src/runtime/clock.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';
import { OpenTrustPolicy } from '../../../src/identity/trust.js';
import { udpMediaSockets } from '../../../src/node/media-sockets.js';
import { SeededRandom } from '../../../src/runtime/random.js';
import { CallMedia } from '../../../src/usages/sip/media/call-media.js';
import { MediaAnchor } from '../../../src/usages/sip/media/media-anchor.js';
import { MediaPortPool } from '../../../src/usages/sip/media/port-pool.js';
import { SipMedia } from '../../../src/usages/sip/media/sip-media.js';
import { FIXED_NOW_SECONDS, TEST_OVERLAY, testIdentity } from '../../helpers/fixtures.js';
import { loopbackSipService, onSipMessages } from '../../helpers/sip-service.js';

/*
 * The home's proxy and registrar as ordinary phones meet them, over real UDP and TCP on
 * loopback (the defects a Kamailio-minded review reproduced):
 * - a phone whose domain is the peer's address (set up with "server 127.0.0.1") is the user at
 *   the home's domain, callable as such;
 * - a Contact is a phone's own address (not this home's); a user's calls go to the AOR's bindings,
 *   and in-dialog requests follow the flow the dialog was made over, whoever registers that Contact;
 * - a phone on TCP is record-routed with ;transport=tcp (twice, RFC 5658, when the other side is UDP);
 * - Contacts that differ by ;transport are two bindings, and a value repeated in one REGISTER is one;
 * - CANCEL of a call whose phone never answered: 487 at once; a late ring is cancelled, a late
 *   answer ACKed and hung up, and the branch's transaction ends even if the phone never answers
 *   its CANCEL's INVITE; CANCEL after the 2xx is answered 200;
 * - a phone asking its own account for voicemail news (message-summary) is answered 489 by the
 *   home, which has no voicemail, instead of the question reaching every phone of the user;
 * - an INVITE that reuses the Call-ID of a call in progress is refused (482) and moves none of its
 *   media; a stranger cannot re-offer in an anchored call's dialog (403);
 * - a re-INVITE that took up a call whose media this home had forgotten, and fails (491, say),
 *   lets go of the media it began, so the phones' retry starts afresh.
 */
const domain = 'smiths.example';
let service: SipService;
let sipPort = 0;
const clock = new SystemClock();
const phones: Phone[] = [];

before(async () => {
  service = await loopbackSipService(domain, {
    credentials: { lookup: (user) => (['alice', 'bob', 'carol'].includes(user) ? { MD5: '0'.repeat(32), 'SHA-256': '0'.repeat(64) } : undefined) },
    clock,
  });
  sipPort = service.address.port;
});
after(async () => {
  for (const phone of phones) phone.close();
  await service.close();
});

/** A phone: what it receives is kept in order; `next` waits for the first unread message that matches. */
class Phone {
  readonly inbox: SipMessage[] = [];
  private read = 0;
  private waiters: (() => void)[] = [];
  private udp?: UdpSocket;
  private tcp?: TcpSocket;
  private listener?: TcpServer;
  port = 0;
  listenPort = 0;
  host = '127.0.0.1';
  server = sipPort;

  /** A phone on UDP; `host` another loopback address to stand for another device of the LAN. */
  static async udp(host = '127.0.0.1', server = sipPort): Promise<Phone> {
    const phone = new Phone();
    phone.host = host;
    phone.server = server;
    phone.udp = createSocket('udp4');
    phone.udp.on('message', (bytes) => phone.take(parseSipMessage(new Uint8Array(bytes))));
    await new Promise<void>((resolve) => phone.udp!.bind(0, host, () => resolve()));
    phone.port = phone.udp.address().port;
    phones.push(phone);
    return phone;
  }

  static async tcp(server = sipPort): Promise<Phone> {
    const phone = new Phone();
    phone.server = server;
    const socket = connect(server, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    phone.port = socket.localPort!;
    phone.useConnection(socket);
    phones.push(phone);
    return phone;
  }

  /** A phone on TCP that also listens, at `listenPort`, for connections to its Contact (RFC 3261 s18.2.1). */
  static async tcpListening(server = sipPort): Promise<Phone> {
    const phone = await Phone.tcp(server);
    phone.listener = createServer((socket) => phone.useConnection(socket));
    await new Promise<void>((resolve) => phone.listener!.listen(0, '127.0.0.1', () => resolve()));
    phone.listenPort = (phone.listener.address() as { port: number }).port;
    return phone;
  }

  /** What a phone's connection carries; the phone answers over the newest one. */
  useConnection(socket: TcpSocket): void {
    this.tcp = socket;
    onSipMessages(socket, (message) => this.take(message));
  }

  get transport(): 'UDP' | 'TCP' {
    return this.tcp ? 'TCP' : 'UDP';
  }

  send(lines: readonly string[]): void {
    const text = `${lines.join('\r\n')}\r\n\r\n`;
    if (this.tcp) this.tcp.write(text);
    else this.udp!.send(text, this.server, '127.0.0.1');
  }

  async next(match: (m: SipMessage) => boolean, ms = 3000): Promise<SipMessage> {
    const deadline = Date.now() + ms;
    for (;;) {
      for (; this.read < this.inbox.length; this.read++) {
        if (match(this.inbox[this.read])) return this.inbox[this.read++];
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`phone ${this.port}: nothing matching within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  requests(method: string): SipRequest[] {
    return this.inbox.filter((m): m is SipRequest => m.kind === 'request' && m.method === method);
  }

  closeConnection(): void {
    this.tcp?.destroy();
  }

  close(): void {
    this.udp?.close();
    this.tcp?.destroy();
    this.listener?.close();
  }

  private take(message: SipMessage): void {
    this.inbox.push(message);
    for (const wake of this.waiters.splice(0)) wake();
  }
}

const isRequest = (method: string) => (m: SipMessage) => m.kind === 'request' && m.method === method;
const isResponse = (status: number, method: string) => (m: SipMessage) => m.kind === 'response' && m.status === status && (m.headers.get('CSeq') ?? '').endsWith(method);
let sequence = 0;

function via(phone: Phone, branch: string): string {
  return `Via: SIP/2.0/${phone.transport} ${phone.host}:${phone.port};branch=z9hG4bK${branch};rport`;
}

async function register(phone: Phone, user: string, contacts: string[], host = domain, expires = 600): Promise<SipResponse> {
  const n = ++sequence;
  phone.send([
    `REGISTER sip:${host} SIP/2.0`,
    via(phone, `reg${n}`),
    `From: <sip:${user}@${host}>;tag=r${n}`,
    `To: <sip:${user}@${host}>`,
    `Call-ID: reg-${user}-${phone.port}`,
    `CSeq: ${n} REGISTER`,
    ...contacts.map((c) => `Contact: ${c}`),
    `Expires: ${expires}`,
    'Content-Length: 0',
  ]);
  return (await phone.next((m) => m.kind === 'response' && m.headers.get('CSeq') === `${n} REGISTER`)) as SipResponse;
}

/** Each phone's bindings go (Contact: *), so the next test's calls ring only its own phones. */
async function unregister(...pairs: [Phone, string][]): Promise<void> {
  for (const [phone, user] of pairs) assert.equal((await register(phone, user, ['*'], domain, 0)).status, 200);
  assert.deepEqual(service.location.aors().filter((aor) => service.location.bindings(aor).length > 0), []);
}

interface Call {
  readonly callId: string;
  readonly lines: string[];
  readonly branch: string;
}

function invite(caller: Phone, callerUser: string, uri: string): Call {
  const n = ++sequence;
  const lines = [
    `INVITE ${uri} SIP/2.0`,
    via(caller, `inv${n}`),
    'Max-Forwards: 70',
    `From: <sip:${callerUser}@${domain}>;tag=c${n}`,
    `To: <${uri}>`,
    `Call-ID: call-${n}`,
    'CSeq: 1 INVITE',
    `Contact: <sip:${callerUser}@${caller.host}:${caller.port}${caller.transport === 'TCP' ? ';transport=tcp' : ''}>`,
    'Content-Length: 0',
  ];
  caller.send(lines);
  return { callId: `call-${n}`, lines, branch: `inv${n}` };
}

/** The phone's answer to a request it received, as it would write it. */
function answer(phone: Phone, request: SipRequest, status: number, reason: string, toTag = 'callee'): void {
  const to = request.headers.get('To')!;
  phone.send([
    `SIP/2.0 ${status} ${reason}`,
    ...request.headers.getAll('Via').map((v) => `Via: ${v}`),
    ...request.headers.getAll('Record-Route').map((r) => `Record-Route: ${r}`),
    `From: ${request.headers.get('From')}`,
    `To: ${to.includes('tag=') ? to : `${to};tag=${toTag}`}`,
    `Call-ID: ${request.headers.get('Call-ID')}`,
    `CSeq: ${request.headers.get('CSeq')}`,
    ...(status < 300 ? [`Contact: <sip:callee@${phone.host}:${phone.port}>`] : []),
    'Content-Length: 0',
  ]);
}

function cancel(caller: Phone, call: Call): void {
  caller.send(call.lines.filter((l) => !l.startsWith('Contact')).map((l) => l.replace(/^INVITE /, 'CANCEL ').replace('CSeq: 1 INVITE', 'CSeq: 1 CANCEL')));
}

/** The caller cancels `call`: its CANCEL is answered 200, and its INVITE 487 at once, not after Timer B. */
async function cancelledAtOnce(caller: Phone, call: Call): Promise<void> {
  const cancelledAt = Date.now();
  cancel(caller, call);
  assert.ok(await caller.next(isResponse(200, 'CANCEL')));
  assert.ok(await caller.next(isResponse(487, 'INVITE'), 1500));
  assert.ok(Date.now() - cancelledAt < 1500, 'the 487 comes at once, not after Timer B');
}

test("a phone whose domain is the peer's address registers as the user at the home's domain, and is called there and at that address", async () => {
  const alice = await Phone.udp();
  const bob = await Phone.udp();
  const ok = await register(alice, 'alice', [`<sip:alice@127.0.0.1:${alice.port}>`], '127.0.0.1');
  assert.equal(ok.status, 200);
  assert.deepEqual(service.location.aors(), ['alice@smiths.example'], 'one AOR, at the domain');
  assert.equal((await register(bob, 'bob', [`<sip:bob@127.0.0.1:${bob.port}>`])).status, 200);

  const byDomain = invite(bob, 'bob', `sip:alice@${domain}`);
  const reached = (await alice.next(isRequest('INVITE'))) as SipRequest;
  assert.equal(reached.headers.get('Call-ID'), byDomain.callId);
  answer(alice, reached, 486, 'Busy Here');
  assert.ok(await bob.next(isResponse(486, 'INVITE')));

  // bob's phone, set up the same way, dials alice at the peer's address.
  const byAddress = invite(bob, 'bob', 'sip:alice@127.0.0.1');
  const again = (await alice.next(isRequest('INVITE'))) as SipRequest;
  assert.equal(again.headers.get('Call-ID'), byAddress.callId);
  answer(alice, again, 486, 'Busy Here');
  assert.ok(await bob.next(isResponse(486, 'INVITE')));

  // A phone's keepalive to its server's address is answered by the peer; the same host on another port is someone else.
  bob.send([`OPTIONS sip:bob@127.0.0.1:${sipPort} SIP/2.0`, via(bob, `opt${++sequence}`), `From: <sip:bob@${domain}>;tag=o`, `To: <sip:bob@127.0.0.1:${sipPort}>`, 'Call-ID: keepalive', 'CSeq: 1 OPTIONS', 'Content-Length: 0']);
  assert.ok(await bob.next(isResponse(200, 'OPTIONS')));
  assert.equal(bob.requests('OPTIONS').length, 0, 'answered by the peer, not passed to the phone');
  const elsewhere = await register(alice, 'alice', [`<sip:alice@127.0.0.1:${alice.port}>`], '127.0.0.1:9');
  assert.equal(elsewhere.status, 404, 'a user at our host but another port is not ours');
  await unregister([alice, 'alice'], [bob, 'bob']);
});

test("a Contact is a phone's own address; calls find a user by the AOR, and in-dialog requests follow the dialog's flow even when another phone registers the same Contact", async () => {
  const carol = await Phone.udp('127.0.0.2');
  const mallory = await Phone.udp('127.0.0.3'); // alice's phone, up to no good
  const bob = await Phone.udp();
  const carolContact = `<sip:carol@127.0.0.2:${carol.port}>`;
  assert.equal((await register(carol, 'carol', [carolContact])).status, 200);
  for (const ours of [`<sip:carol@${domain}>`, `<sip:carol@127.0.0.1:${sipPort}>`, '<sip:carol@127.0.0.1>'.replace('127.0.0.1', `127.0.0.1:${sipPort}`)]) {
    const refused = await register(mallory, 'alice', [ours]);
    assert.equal(refused.status, 403, `${ours} is this home's, not a phone's`);
  }
  assert.equal((await register(mallory, 'alice', [carolContact])).status, 200, "carol's Contact under alice's name: alice's own affair");
  assert.equal((await register(bob, 'bob', [`<sip:bob@127.0.0.1:${bob.port}>`])).status, 200);

  // bob calls carol: her AOR's binding, not whoever registered her Contact.
  const call = invite(bob, 'bob', `sip:carol@${domain}`);
  const ringing = (await carol.next(isRequest('INVITE'))) as SipRequest;
  answer(carol, ringing, 200, 'OK');
  const ok = (await bob.next(isResponse(200, 'INVITE'))) as SipResponse;
  const target = /<([^>]+)>/.exec(ok.headers.get('Contact')!)![1];
  const routes = ok.headers.getAll('Record-Route').reverse();
  const inDialog = (method: string, cseq: number) => [
    `${method} ${target} SIP/2.0`,
    via(bob, `${method}${++sequence}`),
    'Max-Forwards: 70',
    ...routes.map((r) => `Route: ${r}`),
    `From: ${call.lines.find((l) => l.startsWith('From:'))!.slice(6)}`,
    `To: ${ok.headers.get('To')}`,
    `Call-ID: ${call.callId}`,
    `CSeq: ${cseq} ${method}`,
    'Content-Length: 0',
  ];
  bob.send(inDialog('ACK', 1));
  assert.ok(await carol.next(isRequest('ACK')));
  // carol's phone drops its registration mid-call; the dialog's mark still names her flow.
  assert.equal((await register(carol, 'carol', ['*'], domain, 0)).status, 200);
  bob.send(inDialog('BYE', 2));
  const bye = (await carol.next(isRequest('BYE'))) as SipRequest;
  answer(carol, bye, 200, 'OK');
  assert.ok(await bob.next(isResponse(200, 'BYE')));
  assert.equal(mallory.requests('INVITE').length + mallory.requests('ACK').length + mallory.requests('BYE').length, 0, "nothing of carol's call reaches another phone");
  await unregister([mallory, 'alice'], [bob, 'bob']);
});

test("on a peer bound to :: (IPv4 phones arrive as ::ffff:a.b.c.d), a request to a Contact reaches the phone that registered it from that address, not one that registered it first under another name (review F7)", async () => {
  const dual = await loopbackSipService(domain, { bind: { host: '::', port: 0 } });
  try {
    const port = dual.address.port;
    const carol = await Phone.udp('127.0.0.2', port);
    const mallory = await Phone.udp('127.0.0.3', port);
    const bob = await Phone.udp('127.0.0.1', port);
    const carolContact = `sip:carol@127.0.0.2:${carol.port}`;
    assert.equal((await register(mallory, 'alice', [`<${carolContact}>`])).status, 200, 'first, under another name');
    assert.equal((await register(carol, 'carol', [`<${carolContact}>`])).status, 200);
    assert.match(dual.location.bindings(`carol@${domain}`)[0].flow.remote.host, /^::ffff:127\.0\.0\.2$/, 'the case under test: a mapped address');
    const n = ++sequence;
    bob.send([`MESSAGE ${carolContact} SIP/2.0`, via(bob, `msg${n}`), 'Max-Forwards: 70', `From: <sip:bob@${domain}>;tag=m${n}`, `To: <${carolContact}>`, `Call-ID: msg-${n}`, 'CSeq: 1 MESSAGE', 'Content-Length: 0']);
    const message = (callId: string) => (m: SipMessage) => isRequest('MESSAGE')(m) && m.headers.get('Call-ID') === callId;
    answer(carol, (await carol.next(message(`msg-${n}`))) as SipRequest, 200, 'OK'); // the phone at that address gets it
    assert.equal(mallory.requests('MESSAGE').length, 0, 'the one that registered her Contact first gets nothing');
    // A Route naming this peer in another spelling of its address is ours too, not a hop onward (to ourselves).
    bob.send([`MESSAGE ${carolContact} SIP/2.0`, via(bob, `msg${n}b`), 'Max-Forwards: 70', `Route: <sip:[::ffff:127.0.0.1]:${port};lr>`, `From: <sip:bob@${domain}>;tag=m${n}`, `To: <${carolContact}>`, `Call-ID: msg-${n}b`, 'CSeq: 1 MESSAGE', 'Content-Length: 0']);
    answer(carol, (await carol.next(message(`msg-${n}b`))) as SipRequest, 200, 'OK');
    assert.ok(await bob.next(isResponse(200, 'MESSAGE')));
  } finally {
    await dual.close();
  }
});

test('a phone on TCP is record-routed with ;transport=tcp, and twice (RFC 5658) when the callee is on UDP; its BYE on TCP reaches the callee', async () => {
  const bobTcp = await Phone.tcp();
  const alice = await Phone.udp();
  assert.equal((await register(bobTcp, 'bob', [`<sip:bob@127.0.0.1:${bobTcp.port};transport=tcp>`])).status, 200);
  assert.equal((await register(alice, 'alice', [`<sip:alice@127.0.0.1:${alice.port}>`])).status, 200);

  const call = invite(bobTcp, 'bob', `sip:alice@${domain}`);
  const reached = (await alice.next(isRequest('INVITE'))) as SipRequest;
  const recorded = reached.headers.getAll('Record-Route');
  assert.equal(recorded.length, 2, recorded.join(' | '));
  assert.doesNotMatch(recorded[0], /transport=/, 'the side nearest alice (UDP) is plain');
  assert.match(recorded[1], /;transport=tcp;lr/, "the side nearest bob's TCP phone says TCP");
  answer(alice, reached, 200, 'OK');
  const ok = (await bobTcp.next(isResponse(200, 'INVITE'))) as SipResponse;
  const routeSet = ok.headers.getAll('Record-Route').reverse();
  assert.match(routeSet[0], /transport=tcp/, "bob's first Route is the TCP one");

  const target = /<([^>]+)>/.exec(ok.headers.get('Contact')!)![1];
  bobTcp.send([
    `BYE ${target} SIP/2.0`,
    via(bobTcp, `bye${++sequence}`),
    'Max-Forwards: 70',
    ...routeSet.map((r) => `Route: ${r}`),
    `From: ${call.lines.find((l) => l.startsWith('From:'))!.slice(6)}`,
    `To: ${ok.headers.get('To')}`,
    `Call-ID: ${call.callId}`,
    'CSeq: 2 BYE',
    'Content-Length: 0',
  ]);
  const bye = (await alice.next(isRequest('BYE'))) as SipRequest;
  assert.equal(bye.headers.getAll('Route').length, 0, 'both of our Routes are taken off');
  answer(alice, bye, 200, 'OK');
  assert.ok(await bobTcp.next(isResponse(200, 'BYE')));

  // Two phones on UDP: one Record-Route, as before.
  const carol = await Phone.udp();
  assert.equal((await register(carol, 'carol', [`<sip:carol@127.0.0.1:${carol.port}>`])).status, 200);
  invite(carol, 'carol', `sip:alice@${domain}`);
  const plain = (await alice.next(isRequest('INVITE'))) as SipRequest;
  assert.equal(plain.headers.getAll('Record-Route').length, 1);
  answer(alice, plain, 486, 'Busy Here');
  assert.ok(await carol.next(isResponse(486, 'INVITE')));
  await unregister([bobTcp, 'bob'], [alice, 'alice'], [carol, 'carol']);
});

test("a phone registered on UDP that sends its INVITE over a new TCP connection (pjsip's switch for a large message) gets the callee's BYE back over that connection (SIP review F2)", async () => {
  const aliceUdp = await Phone.udp();
  const bob = await Phone.udp();
  assert.equal((await register(aliceUdp, 'alice', [`<sip:alice@127.0.0.1:${aliceUdp.port}>`])).status, 200);
  assert.equal((await register(bob, 'bob', [`<sip:bob@127.0.0.1:${bob.port}>`])).status, 200);
  const alice = await Phone.tcp();
  const lines = [`INVITE sip:bob@${domain} SIP/2.0`, via(alice, `tcp${++sequence}`), 'Max-Forwards: 70', `From: <sip:alice@${domain}>;tag=at`, `To: <sip:bob@${domain}>`, 'Call-ID: tcp-switch', 'CSeq: 1 INVITE', `Contact: <sip:alice@127.0.0.1:${alice.port};transport=tcp>`, 'Content-Length: 0'];
  alice.send(lines);
  const reached = (await bob.next(isRequest('INVITE'))) as SipRequest;
  assert.match(reached.headers.get('Contact')!, /p2p-flow=/, "alice's Contact is marked with the connection it came on");
  answer(bob, reached, 200, 'OK', 'bt');
  assert.ok(await alice.next(isResponse(200, 'INVITE')));
  const aliceContact = /<([^>]+)>/.exec(reached.headers.get('Contact')!)![1];
  bob.send([`BYE ${aliceContact} SIP/2.0`, via(bob, `bye${++sequence}`), 'Max-Forwards: 70', ...reached.headers.getAll('Record-Route').map((r) => `Route: ${r}`), `From: ${reached.headers.get('To')};tag=bt`, `To: <sip:alice@${domain}>;tag=at`, 'Call-ID: tcp-switch', 'CSeq: 1 BYE', 'Content-Length: 0']);
  const bye = (await alice.next(isRequest('BYE'))) as SipRequest;
  answer(alice, bye, 200, 'OK');
  assert.ok(await bob.next(isResponse(200, 'BYE')));
  await unregister([aliceUdp, 'alice'], [bob, 'bob']);
});

test("a phone on TCP whose connection has closed is called over a new connection to its Contact (RFC 3261 s18.1.1), and its dialog goes on over it; one using outbound (;reg-id) gets no connection and its binding goes (RFC 5626 s5.3)", async () => {
  const alice = await Phone.udp();
  const carol = await Phone.tcpListening();
  assert.equal((await register(alice, 'alice', [`<sip:alice@127.0.0.1:${alice.port}>`])).status, 200);
  assert.equal((await register(carol, 'carol', [`<sip:carol@127.0.0.1:${carol.listenPort};transport=tcp>`])).status, 200);
  const counters = () => service.status() as { transport: { connectionsClosed: number }; proxy: { reconnects: number } };
  const closed = () => counters().transport.connectionsClosed;
  const before = closed();
  carol.closeConnection(); // its connection closes (the phone restarted its stack, say); it still listens
  for (let i = 0; i < 50 && closed() === before; i++) await new Promise((resolve) => setTimeout(resolve, 10));

  const call = invite(alice, 'alice', `sip:carol@${domain}`);
  const reached = (await carol.next(isRequest('INVITE'))) as SipRequest;
  assert.equal(counters().proxy.reconnects, 1);
  answer(carol, reached, 200, 'OK', 'ct');
  const ok = (await alice.next(isResponse(200, 'INVITE'))) as SipResponse;
  const carolContact = /<([^>]+)>/.exec(ok.headers.get('Contact')!)![1];
  alice.send([`BYE ${carolContact} SIP/2.0`, via(alice, `bye${++sequence}`), 'Max-Forwards: 70', ...ok.headers.getAll('Record-Route').reverse().map((r) => `Route: ${r}`), `From: ${call.lines.find((l) => l.startsWith('From:'))!.slice(6)}`, `To: ${ok.headers.get('To')}`, `Call-ID: ${call.callId}`, 'CSeq: 2 BYE', 'Content-Length: 0']);
  const bye = (await carol.next(isRequest('BYE'))) as SipRequest;
  answer(carol, bye, 200, 'OK');
  assert.ok(await alice.next(isResponse(200, 'BYE')));
  assert.equal(counters().proxy.reconnects, 1, 'the BYE went over the connection the INVITE opened');

  // With outbound the flow is the only way to the phone: it has closed, so the call fails and the binding goes.
  const dave = await Phone.tcpListening();
  assert.equal((await register(dave, 'bob', [`<sip:bob@127.0.0.1:${dave.listenPort};transport=tcp>;reg-id=1;+sip.instance="<urn:uuid:00000000-0000-0000-0000-00000000da7e>"`])).status, 200);
  const daveClosed = closed();
  dave.closeConnection();
  for (let i = 0; i < 50 && closed() === daveClosed; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  invite(alice, 'alice', `sip:bob@${domain}`);
  const refused = (await alice.next((m) => m.kind === 'response' && m.status >= 400)) as SipResponse;
  assert.ok([430, 480].includes(refused.status), `${refused.status}`);
  assert.equal(service.location.bindings(`bob@${domain}`).length, 0);
  assert.equal(dave.requests('INVITE').length, 0);
  assert.equal(counters().proxy.reconnects, 1);
  await unregister([alice, 'alice'], [carol, 'carol']);
});

test("an ATA whose two lines registered over one TCP connection, each listening on its own port, gets each line's calls on that line's port after the connection closes (review R2)", async () => {
  const alice = await Phone.udp();
  const ata = await Phone.tcpListening();
  // The second line listens on a port of its own.
  const line2 = new Phone();
  const line2Listener = createServer((socket) => line2.useConnection(socket));
  await new Promise<void>((resolve) => line2Listener.listen(0, '127.0.0.1', () => resolve()));
  const line2Port = (line2Listener.address() as { port: number }).port;
  try {
    assert.equal((await register(alice, 'alice', [`<sip:alice@127.0.0.1:${alice.port}>`])).status, 200);
    assert.equal((await register(ata, 'carol', [`<sip:carol@127.0.0.1:${ata.listenPort};transport=tcp>`])).status, 200);
    assert.equal((await register(ata, 'bob', [`<sip:bob@127.0.0.1:${line2Port};transport=tcp>`])).status, 200);
    const closed = () => (service.status() as { transport: { connectionsClosed: number } }).transport.connectionsClosed;
    const before = closed();
    ata.closeConnection();
    for (let i = 0; i < 50 && closed() === before; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    // A call to line 1 opens a connection to line 1's port; a call to line 2 then goes to line 2's, not over line 1's new connection.
    const first = invite(alice, 'alice', `sip:carol@${domain}`);
    answer(ata, (await ata.next(isRequest('INVITE'))) as SipRequest, 486, 'Busy Here');
    await alice.next((m) => isResponse(486, 'INVITE')(m) && m.headers.get('Call-ID') === first.callId);
    const second = invite(alice, 'alice', `sip:bob@${domain}`);
    const reached = (await line2.next(isRequest('INVITE'))) as SipRequest;
    assert.equal(reached.headers.get('Call-ID'), second.callId);
    assert.equal(ata.requests('INVITE').length, 1, 'line 1 got only its own call');
    answer(line2, reached, 486, 'Busy Here');
    await alice.next((m) => isResponse(486, 'INVITE')(m) && m.headers.get('Call-ID') === second.callId);
    await unregister([alice, 'alice'], [ata, 'carol'], [line2, 'bob']);
  } finally {
    line2.close();
    line2Listener.close();
  }
});

test('a TCP binding the peer kept across its restart (on a connection not yet made) is called over a new connection to its Contact', async () => {
  const alice = await Phone.udp();
  const carol = await Phone.tcpListening();
  assert.equal((await register(alice, 'alice', [`<sip:alice@127.0.0.1:${alice.port}>`])).status, 200);
  const reconnects = () => (service.status() as { proxy: { reconnects: number } }).proxy.reconnects;
  const before = reconnects();
  // As saved-bindings.ts brings it back: the old connection's address, an id no connection has.
  service.location.set(`carol@${domain}`, [{ contact: `sip:carol@127.0.0.1:${carol.listenPort};transport=tcp`, expiresAt: Date.now() + 600_000, callId: 'kept', cseq: 1, q: undefined, flow: { transport: 'TCP', remote: { host: '127.0.0.1', port: 40999 }, connectionId: -1 } }]);
  const call = invite(alice, 'alice', `sip:carol@${domain}`);
  const reached = (await carol.next(isRequest('INVITE'))) as SipRequest;
  assert.equal(reached.headers.get('Call-ID'), call.callId);
  assert.equal(reconnects() - before, 1);
  answer(carol, reached, 486, 'Busy Here');
  await alice.next(isResponse(486, 'INVITE'));
  assert.ok((service.location.bindings(`carol@${domain}`)[0].flow.connectionId ?? -1) >= 0, 'the binding is on the new connection now');
  service.location.set(`carol@${domain}`, []);
  await unregister([alice, 'alice']);
});

test('a response whose request came over a TCP connection that has since closed goes over a new connection to the address it came from, at the port in sent-by (RFC 3261 s18.2.2)', async () => {
  const alice = await Phone.udp();
  assert.equal((await register(alice, 'alice', [`<sip:alice@127.0.0.1:${alice.port}>`])).status, 200);
  const bob = await Phone.tcpListening();
  const n = ++sequence;
  // Its Via names another host (a phone that wrote its LAN name or an old address): the answer goes to where the request came from (s18.2.2's received), at the Via's port.
  bob.send([`INVITE sip:alice@${domain} SIP/2.0`, `Via: SIP/2.0/TCP 127.0.0.9:${bob.listenPort};branch=z9hG4bKgone${n}`, 'Max-Forwards: 70', `From: <sip:bob@${domain}>;tag=b${n}`, `To: <sip:alice@${domain}>`, `Call-ID: gone-${n}`, 'CSeq: 1 INVITE', `Contact: <sip:bob@127.0.0.1:${bob.listenPort};transport=tcp>`, 'Content-Length: 0']);
  const reached = (await alice.next(isRequest('INVITE'))) as SipRequest;
  const closed = () => (service.status() as { transport: { connectionsClosed: number } }).transport.connectionsClosed;
  const before = closed();
  bob.closeConnection();
  for (let i = 0; i < 50 && closed() === before; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  answer(alice, reached, 200, 'OK', 'at');
  const ok = (await bob.next(isResponse(200, 'INVITE'))) as SipResponse;
  assert.equal(ok.headers.get('Call-ID'), `gone-${n}`);
  await unregister([alice, 'alice']);
});

test('Contacts that differ by ;transport are two bindings; a Contact repeated in one REGISTER is one', async () => {
  const dave = await Phone.udp();
  const both = await register(dave, 'bob', [`<sip:bob@127.0.0.1:${dave.port}>`, `<sip:bob@127.0.0.1:${dave.port};transport=tcp>`]);
  assert.equal(both.status, 200, both.reason);
  const mine = both.headers.getAll('Contact').filter((c) => c.includes(`:${dave.port}`));
  assert.equal(mine.length, 2, mine.join(' | '));
  const repeated = await register(dave, 'bob', [`<sip:bob@127.0.0.1:${dave.port}>`, `<sip:bob@127.0.0.1:${dave.port}>`]);
  assert.equal(repeated.status, 200, repeated.reason);
  assert.equal(repeated.headers.getAll('Contact').filter((c) => c.includes(`:${dave.port}`)).length, 2);
  await unregister([dave, 'bob']);
});

test("what a phone asks its own account is answered here and reaches no phone: a message-summary SUBSCRIBE (489), a keepalive OPTIONS (baresip's kaoptions, 200), a PUBLISH (489, proxy review P2); a subscription or OPTIONS to another user is forwarded", async () => {
  const [desk, kitchen, bobPhone] = [await Phone.udp(), await Phone.udp(), await Phone.udp()];
  await register(desk, 'alice', [`<sip:alice@127.0.0.1:${desk.port}>`]);
  await register(kitchen, 'alice', [`<sip:alice@127.0.0.1:${kitchen.port}>`]);
  await register(bobPhone, 'bob', [`<sip:bob@127.0.0.1:${bobPhone.port}>`]);
  const subscribe = (to: string, event: string) => {
    const n = ++sequence;
    desk.send([`SUBSCRIBE sip:${to}@${domain} SIP/2.0`, via(desk, `sub${n}`), 'Max-Forwards: 70', `From: <sip:alice@${domain}>;tag=s${n}`, `To: <sip:${to}@${domain}>`, `Call-ID: sub-${n}`, `CSeq: 1 SUBSCRIBE`, `Event: ${event}`, `Contact: <sip:alice@127.0.0.1:${desk.port}>`, 'Expires: 600', 'Content-Length: 0']);
  };
  subscribe('alice', 'message-summary');
  await desk.next(isResponse(489, 'SUBSCRIBE'));
  subscribe('bob', 'presence');
  const forwarded = (await bobPhone.next(isRequest('SUBSCRIBE'))) as SipRequest;
  assert.equal(forwarded.headers.get('Event'), 'presence');
  answer(bobPhone, forwarded, 489, 'Bad Event');
  await desk.next(isResponse(489, 'SUBSCRIBE'));
  const ask = (method: string, to: string, extra: string[] = []) => {
    const n = ++sequence;
    desk.send([`${method} sip:${to}@${domain} SIP/2.0`, via(desk, `own${n}`), 'Max-Forwards: 70', `From: <sip:alice@${domain}>;tag=o${n}`, `To: <sip:${to}@${domain}>`, `Call-ID: own-${n}`, `CSeq: 1 ${method}`, ...extra, 'Content-Length: 0']);
  };
  ask('OPTIONS', 'alice');
  assert.match((await desk.next(isResponse(200, 'OPTIONS'))).headers.get('Allow') ?? '', /INVITE/);
  ask('PUBLISH', 'alice', ['Event: presence', 'Expires: 3600']);
  await desk.next(isResponse(489, 'PUBLISH'));
  ask('OPTIONS', 'bob');
  answer(bobPhone, (await bobPhone.next(isRequest('OPTIONS'))) as SipRequest, 200, 'OK');
  await desk.next(isResponse(200, 'OPTIONS'));
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepEqual([desk, kitchen].map((phone) => ['SUBSCRIBE', 'OPTIONS', 'PUBLISH'].map((method) => phone.requests(method).length)), [[0, 0, 0], [0, 0, 0]], "no phone of alice's was asked");
  await unregister([desk, 'alice'], [kitchen, 'alice'], [bobPhone, 'bob']);
});

test('only a user of this home asking that same account is answered here (regression review F4, F5): alice of another domain probing our alice reaches her phones; OPTIONS and PUBLISH for another domain go there', async () => {
  const [desk, kitchen, otherHome] = [await Phone.udp(), await Phone.udp(), await Phone.udp()];
  await register(desk, 'alice', [`<sip:alice@127.0.0.1:${desk.port}>`]);
  await register(kitchen, 'alice', [`<sip:alice@127.0.0.1:${kitchen.port}>`]);
  const elsewhere = `127.0.0.1:${otherHome.port}`; // another domain, at an address the test owns
  const ask = (method: string, from: string, to: string, extra: string[] = []) => {
    const n = ++sequence;
    desk.send([`${method} sip:${to} SIP/2.0`, via(desk, `far${n}`), 'Max-Forwards: 70', `From: <sip:${from}>;tag=f${n}`, `To: <sip:${to}>`, `Call-ID: far-${n}`, `CSeq: 1 ${method}`, ...extra, 'Content-Length: 0']);
  };
  ask('OPTIONS', `alice@${elsewhere}`, `alice@${domain}`);
  answer(kitchen, (await kitchen.next(isRequest('OPTIONS'))) as SipRequest, 200, 'OK');
  await desk.next(isResponse(200, 'OPTIONS'));
  for (const method of ['OPTIONS', 'PUBLISH']) {
    ask(method, `alice@${elsewhere}`, `alice@${elsewhere}`, method === 'PUBLISH' ? ['Event: presence', 'Expires: 3600'] : []);
    answer(otherHome, (await otherHome.next(isRequest(method))) as SipRequest, 200, 'OK');
    await desk.next(isResponse(200, method));
  }
  await unregister([desk, 'alice'], [kitchen, 'alice']);
});

test('CANCEL of a call whose phone never answered: 487 at once; a late ring is cancelled, a late answer ACKed and hung up; CANCEL after the 2xx is answered 200', async () => {
  const sleepy = await Phone.udp();
  const caller = await Phone.udp();
  assert.equal((await register(sleepy, 'carol', [`<sip:carol@127.0.0.1:${sleepy.port}>`])).status, 200);
  assert.equal((await register(caller, 'alice', [`<sip:alice@127.0.0.1:${caller.port}>`])).status, 200);

  const call = invite(caller, 'alice', `sip:carol@${domain}`);
  const first = (await sleepy.next(isRequest('INVITE'))) as SipRequest; // the phone says nothing
  await cancelledAtOnce(caller, call);
  answer(sleepy, first, 180, 'Ringing'); // it wakes and rings
  const stop = (await sleepy.next(isRequest('CANCEL'))) as SipRequest;
  answer(sleepy, stop, 200, 'OK');
  answer(sleepy, first, 487, 'Request Terminated');
  assert.ok(await sleepy.next(isRequest('ACK')));
  assert.equal(caller.inbox.filter((m) => m.kind === 'response' && m.status === 180).length, 0, 'the late ring is not passed up');

  // A phone that answers at once, with no ring, after the caller gave up: its 2xx is ACKed and the
  // dialog it opened is hung up; the caller, who has its 487, hears nothing more.
  const late = invite(caller, 'alice', `sip:carol@${domain}`);
  const silent = (await sleepy.next((m) => isRequest('INVITE')(m) && m.headers.get('Call-ID') === late.callId)) as SipRequest;
  cancel(caller, late);
  assert.ok(await caller.next(isResponse(487, 'INVITE')));
  answer(sleepy, silent, 200, 'OK', 'late');
  const ack = (await sleepy.next(isRequest('ACK'))) as SipRequest;
  const hangUp = (await sleepy.next(isRequest('BYE'))) as SipRequest;
  for (const request of [ack, hangUp]) {
    assert.equal(request.headers.get('Call-ID'), late.callId);
    assert.match(request.headers.get('To')!, /tag=late/);
    assert.equal(request.uri, `sip:callee@127.0.0.1:${sleepy.port}`, "to the answer's Contact");
  }
  assert.equal(hangUp.headers.get('CSeq'), '2 BYE');
  answer(sleepy, hangUp, 200, 'OK');
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(caller.inbox.filter((m) => isResponse(200, 'INVITE')(m) && m.headers.get('Call-ID') === late.callId).length, 0, 'no 2xx after the 487');

  // CANCEL after the 2xx: the INVITE's transaction is still there, so 200 (s9.2), and nothing else happens.
  const answered = invite(caller, 'alice', `sip:carol@${domain}`);
  const ring = (await sleepy.next((m) => isRequest('INVITE')(m) && m.headers.get('Call-ID') === answered.callId)) as SipRequest;
  answer(sleepy, ring, 200, 'OK');
  assert.ok(await caller.next(isResponse(200, 'INVITE')));
  cancel(caller, answered);
  assert.ok(await caller.next(isResponse(200, 'CANCEL')));
  assert.equal(sleepy.requests('CANCEL').length, 1, 'no CANCEL goes to an answered phone');
  await unregister([sleepy, 'carol'], [caller, 'alice']);
});

test("an old phone that strict-routes to its outbound proxy (this peer in the Request-URI, the callee as the last Route) reaches the callee (RFC 3261 s16.4, proxy review P3)", async () => {
  const alice = await Phone.udp();
  const bob = await Phone.udp();
  assert.equal((await register(alice, 'alice', [`<sip:alice@127.0.0.1:${alice.port}>`])).status, 200);
  assert.equal((await register(bob, 'bob', [`<sip:bob@127.0.0.1:${bob.port}>`])).status, 200);
  const counted = () => (service.status().proxy as { strictRoutes: number }).strictRoutes;
  const before = counted();
  const n = ++sequence;
  const strict = [`INVITE sip:127.0.0.1:${sipPort} SIP/2.0`, via(alice, `strict${n}`), 'Max-Forwards: 70', `Route: <sip:bob@${domain}>`, `From: <sip:alice@${domain}>;tag=s${n}`, `To: <sip:bob@${domain}>`, `Call-ID: strict-${n}`, 'CSeq: 1 INVITE', `Contact: <sip:alice@127.0.0.1:${alice.port}>`, 'Content-Length: 0'];
  alice.send(strict);
  const reached = (await bob.next(isRequest('INVITE'))) as SipRequest;
  assert.ok(reached, 'not 405 from the peer: the last Route is where the call goes');
  assert.equal(reached.uri, `sip:bob@127.0.0.1:${bob.port}`);
  assert.equal(reached.headers.get('Route'), undefined, 'the destination is no Route any more');
  alice.send(strict); // retransmitted: the same request, counted once (review F4)
  await new Promise((resolve) => setTimeout(resolve, 100));
  answer(bob, reached, 486, 'Busy Here');
  assert.ok(await alice.next(isResponse(486, 'INVITE')));
  assert.equal(counted(), before + 1);

  // Loose routing is left alone (review F2, F3): a last Route with ;lr is a proxy to pass through,
  // and a Route naming a user at our address, with a Request-URI that is not ours, is taken off as ours.
  const router = await Phone.udp();
  const m = ++sequence;
  alice.send([`OPTIONS sip:127.0.0.1:${sipPort} SIP/2.0`, via(alice, `loose${m}`), 'Max-Forwards: 70', `Route: <sip:127.0.0.1:${router.port};lr>`, `From: <sip:alice@${domain}>;tag=l${m}`, `To: <sip:127.0.0.1:${sipPort}>`, `Call-ID: loose-${m}`, 'CSeq: 1 OPTIONS', 'Content-Length: 0']);
  const passed = (await router.next(isRequest('OPTIONS'))) as SipRequest;
  assert.equal(passed.uri, `sip:127.0.0.1:${sipPort}`, 'the Request-URI is kept');
  const k = ++sequence;
  alice.send([`INVITE sip:bob@${domain} SIP/2.0`, via(alice, `userroute${k}`), 'Max-Forwards: 70', `Route: <sip:bob@127.0.0.1:${sipPort}>`, `From: <sip:alice@${domain}>;tag=u${k}`, `To: <sip:bob@${domain}>`, `Call-ID: userroute-${k}`, 'CSeq: 1 INVITE', `Contact: <sip:alice@127.0.0.1:${alice.port}>`, 'Content-Length: 0']);
  const rang = (await bob.next((m2) => isRequest('INVITE')(m2) && m2.headers.get('Call-ID') === `userroute-${k}`)) as SipRequest;
  assert.ok(rang, 'the call reaches bob, not our own port (482)');
  answer(bob, rang, 486, 'Busy Here');
  assert.ok(await alice.next((m2) => isResponse(486, 'INVITE')(m2) && m2.headers.get('Call-ID') === `userroute-${k}`));
  assert.equal(counted(), before + 1, 'neither was strict-routed');
  await unregister([alice, 'alice'], [bob, 'bob']);
});

test("CANCEL of a call to another home that has said nothing (its INVITE lost on the way): 487 at once, not 408 after Timer B; its late 100 lets the CANCEL go (proxy review P8)", async () => {
  let homePort = 0;
  const here = await loopbackSipService(domain, {
    remote: { resolve: (_aor, done) => done({ transport: 'UDP', remote: { host: '127.0.0.1', port: homePort }, nodeId: 'ab'.repeat(20) }), peer: (nodeId, address) => ({ transport: 'UDP', remote: address, nodeId }) },
  });
  try {
    const silentHome = await Phone.udp('127.0.0.1', here.address.port);
    homePort = silentHome.port;
    const caller = await Phone.udp('127.0.0.1', here.address.port);
    assert.equal((await register(caller, 'alice', [`<sip:alice@127.0.0.1:${caller.port}>`])).status, 200);
    const call = invite(caller, 'alice', 'sip:dave@joneses.example');
    const lost = (await silentHome.next(isRequest('INVITE'))) as SipRequest; // the home says nothing
    await cancelledAtOnce(caller, call);
    answer(silentHome, lost, 100, 'Trying'); // it was only slow
    const stop = (await silentHome.next(isRequest('CANCEL'))) as SipRequest;
    assert.equal(stop.headers.get('Call-ID'), call.callId);
  } finally {
    await here.close();
  }
});

test("an INVITE too large for UDP to another home whose SIP port takes no TCP goes through the overlay, not a 500 (RFC 3261 s18.1.1, proxy review P5); the next call to that home goes there at once (regression review F2)", async () => {
  let homePort = 0;
  const nodeId = 'cd'.repeat(20);
  const here = await loopbackSipService(domain, {
    remote: { resolve: (_aor, done) => done({ transport: 'UDP', remote: { host: '127.0.0.1', port: homePort }, nodeId }), peer: (id, address) => ({ transport: 'UDP', remote: address, nodeId: id }) },
  });
  const throughOverlay: { nodeId: string; text: string }[] = [];
  here.transport.setOverlaySender((to, bytes) => throughOverlay.push({ nodeId: to, text: Buffer.from(bytes).toString() }));
  try {
    const udpOnlyHome = await Phone.udp('127.0.0.1', here.address.port); // a UDP socket: its port takes no TCP connection
    homePort = udpOnlyHome.port;
    const caller = await Phone.udp('127.0.0.1', here.address.port);
    assert.equal((await register(caller, 'alice', [`<sip:alice@127.0.0.1:${caller.port}>`])).status, 200);
    const sdp = `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\n${'a=x-padding:0123456789abcdef\r\n'.repeat(40)}`;
    const proxyCounters = () => (here.status() as { proxy: { overlayFallbacks: number; forwarded: number } }).proxy;
    const call = async (sent: number) => {
      const n = ++sequence;
      caller.send([`INVITE sip:dave@joneses.example SIP/2.0`, via(caller, `big${n}`), 'Max-Forwards: 70', `From: <sip:alice@${domain}>;tag=b${n}`, '<sip:dave@joneses.example>'.replace(/^/, 'To: '), `Call-ID: big-${n}`, 'CSeq: 1 INVITE', `Contact: <sip:alice@127.0.0.1:${caller.port}>`, 'Content-Type: application/sdp', `Content-Length: ${sdp.length}`, '', sdp.replace(/\r\n$/, '')]);
      for (let i = 0; i < 100 && throughOverlay.length === sent; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    };
    await call(0);
    assert.equal(throughOverlay.length, 1, 'sent through the overlay once TCP was refused');
    assert.equal(throughOverlay[0].nodeId, nodeId);
    assert.match(throughOverlay[0].text, /^INVITE sip:dave@joneses\.example SIP\/2\.0\r\nVia: SIP\/2\.0\/OVERLAY /);
    assert.deepEqual(proxyCounters(), { ...proxyCounters(), overlayFallbacks: 1, forwarded: 1 }, 'one branch, counted once (regression review F3)');
    // The next call to that home goes through the overlay at once: no TCP try, no fallback (regression review F2).
    await call(1);
    assert.equal(throughOverlay.length, 2);
    assert.match(throughOverlay[1].text, /^INVITE sip:dave@joneses\.example SIP\/2\.0\r\nVia: SIP\/2\.0\/OVERLAY /);
    assert.deepEqual(proxyCounters(), { ...proxyCounters(), overlayFallbacks: 1, forwarded: 2 });
    assert.equal(udpOnlyHome.requests('INVITE').length, 0, 'never as a datagram larger than 1300 bytes');
    assert.equal(caller.inbox.filter((m) => m.kind === 'response' && m.status >= 300).length, 0, 'the caller got no failure');
  } finally {
    await here.close();
  }
});

/** A home of its own whose timers run on a virtual clock the test moves, with these users (any password). */
async function onVirtualTime(users: string[]): Promise<{ virtual: VirtualClock; other: SipService }> {
  const virtual = new VirtualClock();
  const other = await loopbackSipService(domain, {
    credentials: { lookup: (user) => (users.includes(user) ? { MD5: '0'.repeat(32), 'SHA-256': '0'.repeat(64) } : undefined) },
    clock: virtual,
    nonceSecret: new Uint8Array(32).fill(8),
  });
  return { virtual, other };
}

test("a phone that rings after the caller's CANCEL, is cancelled and never ends its INVITE leaves no transaction behind (Timer B's stand-in, 64*T1)", async () => {
  const { virtual, other } = await onVirtualTime(['alice', 'carol']);
  try {
    const port = other.address.port;
    const stubborn = await Phone.udp('127.0.0.1', port);
    const caller = await Phone.udp('127.0.0.1', port);
    assert.equal((await register(stubborn, 'carol', [`<sip:carol@127.0.0.1:${stubborn.port}>`])).status, 200);
    assert.equal((await register(caller, 'alice', [`<sip:alice@127.0.0.1:${caller.port}>`])).status, 200);
    const call = invite(caller, 'alice', `sip:carol@${domain}`);
    const ringing = (await stubborn.next(isRequest('INVITE'))) as SipRequest;
    cancel(caller, call);
    assert.ok(await caller.next(isResponse(487, 'INVITE')));
    answer(stubborn, ringing, 180, 'Ringing');
    const stop = (await stubborn.next(isRequest('CANCEL'))) as SipRequest;
    answer(stubborn, stop, 200, 'OK'); // and never a final response to the INVITE
    await new Promise((resolve) => setTimeout(resolve, 100));
    const live = () => (other.status() as { clientTransactions: number }).clientTransactions;
    assert.ok(live() >= 1);
    virtual.runUntil(virtual.now() + 40_000);
    assert.equal(live(), 0, 'the INVITE and CANCEL transactions are gone');
  } finally {
    await other.close();
  }
});

test("a call whose only phone cannot be reached at once (its outbound flow closed) leaves no Timer C behind: it ran 3 minutes on a call already over", async () => {
  const { virtual, other } = await onVirtualTime(['alice', 'bob']);
  try {
    const port = other.address.port;
    const alice = await Phone.udp('127.0.0.1', port);
    const bob = await Phone.tcpListening(port);
    assert.equal((await register(alice, 'alice', [`<sip:alice@127.0.0.1:${alice.port}>`])).status, 200);
    assert.equal((await register(bob, 'bob', [`<sip:bob@127.0.0.1:${bob.listenPort};transport=tcp>;reg-id=1;+sip.instance="<urn:uuid:00000000-0000-0000-0000-00000000b0b0>"`])).status, 200);
    bob.closeConnection();
    await new Promise((resolve) => setTimeout(resolve, 100));
    virtual.runUntil(virtual.now() + 40_000); // whatever the registrations armed and ended
    const before = virtual.pendingTimers();
    invite(alice, 'alice', `sip:bob@${domain}`);
    assert.ok(await alice.next((m) => m.kind === 'response' && m.status >= 400));
    virtual.runUntil(virtual.now() + 40_000); // the INVITE's own transaction ends (Timer H)
    assert.equal(virtual.pendingTimers(), before, 'no timer outlives the call');
  } finally {
    await other.close();
  }
});

/** A phone's SDP offering audio at `port` on loopback. */
const sdp = (port: number) => `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=sendrecv\r\n`;
/** A message's lines with `body` as its SDP (Phone.send ends the last line with the blank line). */
const withBody = (lines: string[], body: string) => [...lines, 'Content-Type: application/sdp', `Content-Length: ${body.length}\r\n\r\n${body.slice(0, -2)}`];

/** A home of its own that anchors every call's media, local ones too (--media-anchor always), on ports from `lowPort`; `timeoutMs` is its --media-timeout. */
async function anchoringHome(lowPort: number, timeoutMs = 60_000): Promise<{ media: SipMedia; anchored: SipService }> {
  const media = new SipMedia(
    new CallMedia({ anchor: new MediaAnchor(new MediaPortPool(lowPort, lowPort + 99), udpMediaSockets('127.0.0.1', silentLogger), clock, timeoutMs), identity: testIdentity(11), random: new SeededRandom(lowPort), lanHost: '127.0.0.1', publicHost: () => '127.0.0.1', trust: new OpenTrustPolicy(TEST_OVERLAY), nowSeconds: () => FIXED_NOW_SECONDS }),
    'always',
    { maxCalls: 10, retryAfterSeconds: 5 },
    () => Date.now(),
  );
  const anchored = await loopbackSipService(domain, { media, clock, nonceSecret: new Uint8Array(32).fill(8) });
  return { media, anchored };
}

/** Where the anchor sends a call's audio on each side (its latched parties). */
function mediaParties(media: SipMedia, callId: string): string {
  const rtp = media.calls.anchor.sessionsNow().find((s) => s.id === callId)!.streams[0].rtp;
  return JSON.stringify([rtp.party('a'), rtp.party('b')]);
}

/** Alice calls bob on `home`'s port and bob answers: a live call whose media the home anchors. */
async function answeredCall(home: SipService, callId: string, more: string[] = []): Promise<{ alice: Phone; bob: Phone; others: Phone[] }> {
  const port = home.address.port;
  const [alice, bob] = [await Phone.udp('127.0.0.1', port), await Phone.udp('127.0.0.1', port)];
  await register(alice, 'alice', [`<sip:alice@127.0.0.1:${alice.port}>`]);
  await register(bob, 'bob', [`<sip:bob@127.0.0.1:${bob.port}>`]);
  const others: Phone[] = [];
  for (const user of more) {
    const phone = await Phone.udp(user === 'stranger' ? '127.0.0.2' : '127.0.0.1', port);
    if (user !== 'stranger') await register(phone, user, [`<sip:${user}@127.0.0.1:${phone.port}>`]);
    others.push(phone);
  }
  alice.send(withBody([`INVITE sip:bob@${domain} SIP/2.0`, via(alice, `live-${callId}`), 'Max-Forwards: 70', `From: <sip:alice@${domain}>;tag=a1`, `To: <sip:bob@${domain}>`, `Call-ID: ${callId}`, 'CSeq: 1 INVITE', `Contact: <sip:alice@127.0.0.1:${alice.port}>`], sdp(30000)));
  const offered = (await bob.next(isRequest('INVITE'))) as SipRequest;
  bob.send(withBody(['SIP/2.0 200 OK', ...offered.headers.getAll('Via').map((v) => `Via: ${v}`), ...offered.headers.getAll('Record-Route').map((r) => `Record-Route: ${r}`), `From: ${offered.headers.get('From')}`, `To: ${offered.headers.get('To')};tag=b1`, `Call-ID: ${callId}`, 'CSeq: 1 INVITE', `Contact: <sip:bob@127.0.0.1:${bob.port}>`], sdp(30002)));
  await alice.next(isResponse(200, 'INVITE'));
  return { alice, bob, others };
}

test("a stranger's INVITE that reuses a live call's Call-ID is refused (482) before it reaches a phone, and moves none of that call's media (third media review X8, media review F2, review M10)", async () => {
  const { media, anchored } = await anchoringHome(47000);
  try {
    const { bob, others: [stranger] } = await answeredCall(anchored, 'live-call-9', ['stranger']);
    const before = mediaParties(media, 'live-call-9');
    // The same Call-ID, no To tag, no SDP (bob's phone would offer in its 200), a Via branch that looks like a home's.
    stranger.send([`INVITE sip:bob@${domain} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.2:${stranger.port};branch=z9hG4bKp2pEVIL9;rport`, 'Max-Forwards: 70', 'From: <sip:mallory@evil.example>;tag=m1', `To: <sip:bob@${domain}>`, 'Call-ID: live-call-9', 'CSeq: 7 INVITE', `Contact: <sip:m@127.0.0.2:${stranger.port}>`, 'Content-Length: 0']);
    assert.ok(await stranger.next(isResponse(482, 'INVITE')));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(bob.requests('INVITE').length, 1, "bob's phone saw only the live call's INVITE");
    assert.ok(media.calls.has('live-call-9'), "the live call's media stays");
    assert.equal(mediaParties(media, 'live-call-9'), before, 'where it was');
  } finally {
    await anchored.close();
  }
});

test("a late-offer call not yet anchored keeps its Call-ID: another caller's INVITE under it is refused (482), and the call still gets its media (review M15)", async () => {
  const { media, anchored } = await anchoringHome(47100);
  try {
    const port = anchored.address.port;
    const [alice, bob, carol] = [await Phone.udp('127.0.0.1', port), await Phone.udp('127.0.0.1', port), await Phone.udp('127.0.0.3', port)];
    await register(alice, 'alice', [`<sip:alice@127.0.0.1:${alice.port}>`]);
    await register(bob, 'bob', [`<sip:bob@127.0.0.1:${bob.port}>`]);
    await register(carol, 'carol', [`<sip:carol@127.0.0.3:${carol.port}>`]);
    const lateInvite = (phone: Phone, user: string, tag: string, branch: string) => [`INVITE sip:bob@${domain} SIP/2.0`, via(phone, branch), 'Max-Forwards: 70', `From: <sip:${user}@${domain}>;tag=${tag}`, `To: <sip:bob@${domain}>`, 'Call-ID: late-15', 'CSeq: 1 INVITE', `Contact: <sip:${user}@${phone.host}:${phone.port}>`, 'Content-Length: 0'];
    alice.send(lateInvite(alice, 'alice', 'a15', 'late15a'));
    const offered = (await bob.next(isRequest('INVITE'))) as SipRequest;
    carol.send(lateInvite(carol, 'carol', 'c15', 'late15c'));
    assert.ok(await carol.next(isResponse(482, 'INVITE')));
    bob.send(withBody(['SIP/2.0 200 OK', ...offered.headers.getAll('Via').map((v) => `Via: ${v}`), ...offered.headers.getAll('Record-Route').map((r) => `Record-Route: ${r}`), `From: ${offered.headers.get('From')}`, `To: ${offered.headers.get('To')};tag=b15`, 'Call-ID: late-15', 'CSeq: 1 INVITE', `Contact: <sip:bob@127.0.0.1:${bob.port}>`], sdp(30150)));
    const ok = (await alice.next(isResponse(200, 'INVITE'))) as SipResponse;
    assert.match(Buffer.from(ok.body).toString(), /m=audio \d+ /, "bob's offer reaches alice, anchored");
    assert.doesNotMatch(Buffer.from(ok.body).toString(), /m=audio 30150 /);
    assert.ok(media.calls.has('late-15'));
  } finally {
    await anchored.close();
  }
});

test("a stranger who knows an anchored call's dialog cannot re-offer in it: its re-INVITE and UPDATE are refused (403), its ACK with SDP goes nowhere, and the media stays (review M1)", async () => {
  const { media, anchored } = await anchoringHome(47250);
  try {
    const { bob, others: [stranger] } = await answeredCall(anchored, 'live-call-m1', ['stranger']);
    const before = mediaParties(media, 'live-call-m1');
    const inDialog = (method: string, cseq: number, branch: string) =>
      withBody([`${method} sip:bob@127.0.0.1:${bob.port} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.2:${stranger.port};branch=z9hG4bK${branch};rport`, 'Max-Forwards: 70', `From: <sip:alice@${domain}>;tag=a1`, `To: <sip:bob@${domain}>;tag=b1`, 'Call-ID: live-call-m1', `CSeq: ${cseq} ${method}`, `Contact: <sip:m@127.0.0.2:${stranger.port}>`], sdp(31000));
    stranger.send(inDialog('INVITE', 9, 'evilre'));
    assert.equal(((await stranger.next(isResponse(403, 'INVITE'))) as SipResponse).reason, "Forbidden (not a party to this call's media)");
    stranger.send(inDialog('UPDATE', 10, 'evilup'));
    assert.ok(await stranger.next(isResponse(403, 'UPDATE')));
    stranger.send(inDialog('ACK', 9, 'evilack'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(bob.inbox.filter((m) => m.kind === 'request' && ['INVITE', 'UPDATE', 'ACK'].includes(m.method) && m.headers.get('Call-ID') === 'live-call-m1' && m.body.length > 0 && Buffer.from(m.body).toString().includes('31000')).length, 0, "none of the stranger's SDP reached bob");
    assert.equal(mediaParties(media, 'live-call-m1'), before, "the call's media did not move");
  } finally {
    await anchored.close();
  }
});

test("another phone of this home that learned an anchored call's dialog cannot re-offer in it: carol's re-INVITE and UPDATE in alice's name are refused (403), her ACK with SDP goes nowhere; alice's own re-INVITE moves the media (review M12)", async () => {
  const { media, anchored } = await anchoringHome(47350);
  try {
    const { alice, bob, others: [carol] } = await answeredCall(anchored, 'live-call-m12', ['carol']);
    const before = mediaParties(media, 'live-call-m12');
    const inDialog = (phone: Phone, method: string, cseq: number, branch: string, port: number) =>
      withBody([`${method} sip:bob@127.0.0.1:${bob.port} SIP/2.0`, via(phone, branch), 'Max-Forwards: 70', `From: <sip:alice@${domain}>;tag=a1`, `To: <sip:bob@${domain}>;tag=b1`, 'Call-ID: live-call-m12', `CSeq: ${cseq} ${method}`, `Contact: <sip:alice@127.0.0.1:${phone.port}>`], sdp(port));
    carol.send(inDialog(carol, 'INVITE', 9, 'carolre', 31200));
    assert.equal(((await carol.next(isResponse(403, 'INVITE'))) as SipResponse).reason, "Forbidden (another account's call)");
    carol.send(inDialog(carol, 'UPDATE', 10, 'carolup', 31200));
    assert.ok(await carol.next(isResponse(403, 'UPDATE')));
    carol.send(inDialog(carol, 'ACK', 9, 'carolack', 31200));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(bob.inbox.filter((m) => m.kind === 'request' && m.headers.get('Call-ID') === 'live-call-m12' && Buffer.from(m.body).toString().includes('31200')).length, 0, "none of carol's SDP reached bob");
    assert.equal(mediaParties(media, 'live-call-m12'), before, "the call's media did not move");
    // alice herself re-offers from her own phone: taken.
    alice.send(inDialog(alice, 'INVITE', 11, 'alicere', 31300));
    const reoffer = (await bob.next((m) => isRequest('INVITE')(m) && m.headers.get('CSeq') === '11 INVITE')) as SipRequest;
    assert.ok(reoffer, "alice's re-INVITE reaches bob");
  } finally {
    await anchored.close();
  }
});

test("a re-INVITE that bob's phone refuses (488) leaves the call's media where the last answer had it, and one bob takes moves it (review M5)", async () => {
  const { media, anchored } = await anchoringHome(47700);
  try {
    const { alice, bob } = await answeredCall(anchored, 'live-call-m5');
    const before = mediaParties(media, 'live-call-m5');
    const reinvite = (cseq: number, branch: string) =>
      withBody([`INVITE sip:bob@127.0.0.1:${bob.port} SIP/2.0`, via(alice, branch), 'Max-Forwards: 70', `From: <sip:alice@${domain}>;tag=a1`, `To: <sip:bob@${domain}>;tag=b1`, 'Call-ID: live-call-m5', `CSeq: ${cseq} INVITE`, `Contact: <sip:alice@127.0.0.1:${alice.port}>`], sdp(31010));
    const bobAnswers = (request: SipRequest, status: string, body?: string) => {
      const lines = [`SIP/2.0 ${status}`, ...request.headers.getAll('Via').map((v) => `Via: ${v}`), `From: ${request.headers.get('From')}`, `To: ${request.headers.get('To')}`, 'Call-ID: live-call-m5', `CSeq: ${request.headers.get('CSeq')}`, `Contact: <sip:bob@127.0.0.1:${bob.port}>`];
      bob.send(body ? withBody(lines, body) : [...lines, 'Content-Length: 0']);
    };
    alice.send(reinvite(2, 'm5-re1'));
    const refused = (await bob.next(isRequest('INVITE'))) as SipRequest;
    assert.notEqual(mediaParties(media, 'live-call-m5'), before, 'the pending re-offer names alice\'s new port');
    bobAnswers(refused, '488 Not Acceptable Here');
    await alice.next(isResponse(488, 'INVITE'));
    assert.equal(mediaParties(media, 'live-call-m5'), before, 'refused: the session goes on as it was');

    alice.send(reinvite(3, 'm5-re2'));
    bobAnswers((await bob.next(isRequest('INVITE'))) as SipRequest, '200 OK', sdp(30002));
    await alice.next(isResponse(200, 'INVITE'));
    assert.match(mediaParties(media, 'live-call-m5'), /31010/, 'answered: alice is at her new port');
  } finally {
    await anchored.close();
  }
});

test('a late offer whose answer in the ACK cannot be read: the ACK goes on with no body and no Content-Type (review M14)', async () => {
  const { anchored } = await anchoringHome(47350);
  try {
    const port = anchored.address.port;
    const [alice, bob] = [await Phone.udp('127.0.0.1', port), await Phone.udp('127.0.0.1', port)];
    await register(alice, 'alice', [`<sip:alice@127.0.0.1:${alice.port}>`]);
    await register(bob, 'bob', [`<sip:bob@127.0.0.1:${bob.port}>`]);
    alice.send([`INVITE sip:bob@${domain} SIP/2.0`, via(alice, 'late14'), 'Max-Forwards: 70', `From: <sip:alice@${domain}>;tag=a14`, `To: <sip:bob@${domain}>`, 'Call-ID: late-14', 'CSeq: 1 INVITE', `Contact: <sip:alice@127.0.0.1:${alice.port}>`, 'Content-Length: 0']);
    const offered = (await bob.next(isRequest('INVITE'))) as SipRequest;
    bob.send(withBody(['SIP/2.0 200 OK', ...offered.headers.getAll('Via').map((v) => `Via: ${v}`), ...offered.headers.getAll('Record-Route').map((r) => `Record-Route: ${r}`), `From: ${offered.headers.get('From')}`, `To: ${offered.headers.get('To')};tag=b14`, 'Call-ID: late-14', 'CSeq: 1 INVITE', `Contact: <sip:bob@127.0.0.1:${bob.port}>`], sdp(30140)));
    const ok = (await alice.next(isResponse(200, 'INVITE'))) as SipResponse;
    const routes = ok.headers.getAll('Record-Route').reverse().map((r) => `Route: ${r}`);
    alice.send(withBody([`ACK sip:bob@127.0.0.1:${bob.port} SIP/2.0`, via(alice, 'ack14'), 'Max-Forwards: 70', ...routes, `From: <sip:alice@${domain}>;tag=a14`, `To: <sip:bob@${domain}>;tag=b14`, 'Call-ID: late-14', 'CSeq: 1 ACK'], 'v=0\r\nthis is no SDP\r\n'));
    const ack = (await bob.next(isRequest('ACK'))) as SipRequest;
    assert.equal(ack.body.length, 0);
    assert.equal(ack.headers.get('Content-Type'), undefined, 'no Content-Type for a body that is not there');
  } finally {
    await anchored.close();
  }
});

test("a forked late-offer call: the losing phone's 2xx gets a BYE, and that BYE ends none of the answered call's media (review M3)", async () => {
  const { media, anchored } = await anchoringHome(47400);
  try {
    const port = anchored.address.port;
    const [alice, desk, kitchen] = [await Phone.udp('127.0.0.1', port), await Phone.udp('127.0.0.1', port), await Phone.udp('127.0.0.1', port)];
    await register(alice, 'alice', [`<sip:alice@127.0.0.1:${alice.port}>`]);
    await register(desk, 'bob', [`<sip:bob@127.0.0.1:${desk.port}>`]);
    await register(kitchen, 'bob', [`<sip:bob@127.0.0.1:${kitchen.port}>`]);
    // A late offer: alice's INVITE has no SDP; both of bob's phones offer in their 200s, the kitchen's a moment late.
    alice.send([`INVITE sip:bob@${domain} SIP/2.0`, via(alice, 'late-m3'), 'Max-Forwards: 70', `From: <sip:alice@${domain}>;tag=a3`, `To: <sip:bob@${domain}>`, 'Call-ID: late-m3', 'CSeq: 1 INVITE', `Contact: <sip:alice@127.0.0.1:${alice.port}>`, 'Content-Length: 0']);
    const [atDesk, atKitchen] = [(await desk.next(isRequest('INVITE'))) as SipRequest, (await kitchen.next(isRequest('INVITE'))) as SipRequest];
    const ok = (phone: Phone, request: SipRequest, tag: string, rtp: number) =>
      phone.send(withBody(['SIP/2.0 200 OK', ...request.headers.getAll('Via').map((v) => `Via: ${v}`), ...request.headers.getAll('Record-Route').map((r) => `Record-Route: ${r}`), `From: ${request.headers.get('From')}`, `To: ${request.headers.get('To')};tag=${tag}`, 'Call-ID: late-m3', 'CSeq: 1 INVITE', `Contact: <sip:bob@127.0.0.1:${phone.port}>`], sdp(rtp)));
    ok(desk, atDesk, 'desk', 30100);
    const won = (await alice.next(isResponse(200, 'INVITE'))) as SipResponse;
    assert.match(won.headers.get('To')!, /tag=desk/);
    ok(kitchen, atKitchen, 'kitchen', 30102);
    const lost = (await alice.next(isResponse(200, 'INVITE'))) as SipResponse;
    assert.match(lost.headers.get('To')!, /tag=kitchen/);
    const inDialog = (response: SipResponse, method: string, cseq: number, branch: string, phone: Phone) => [`${method} sip:bob@127.0.0.1:${phone.port} SIP/2.0`, via(alice, branch), 'Max-Forwards: 70', ...response.headers.getAll('Record-Route').reverse().map((r) => `Route: ${r}`), `From: <sip:alice@${domain}>;tag=a3`, `To: ${response.headers.get('To')}`, 'Call-ID: late-m3', `CSeq: ${cseq} ${method}`];
    alice.send(withBody(inDialog(won, 'ACK', 1, 'ack-m3a', desk), sdp(30104)));
    await desk.next(isRequest('ACK'));
    assert.ok(media.calls.has('late-m3'), 'the answered call is anchored');
    const parties = mediaParties(media, 'late-m3');
    // The caller hangs up the second dialog at once (RFC 3261 s13.2.2.4): ACK, then BYE.
    alice.send(inDialog(lost, 'ACK', 1, 'ack-m3b', kitchen).concat('Content-Length: 0'));
    alice.send(inDialog(lost, 'BYE', 2, 'bye-m3b', kitchen).concat('Content-Length: 0'));
    answer(kitchen, (await kitchen.next(isRequest('BYE'))) as SipRequest, 200, 'OK');
    await alice.next(isResponse(200, 'BYE'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(media.calls.has('late-m3'), "the losing dialog's BYE ended none of the call's media");
    assert.equal(mediaParties(media, 'late-m3'), parties);
  } finally {
    await anchored.close();
  }
});

test('a re-INVITE that took up a call whose media had timed out here, and failed (491), lets go of what it began; the retry anchors afresh (third media review X5)', async () => {
  const { media, anchored } = await anchoringHome(47100);
  try {
    const port = anchored.address.port;
    const [alice, bob] = [await Phone.udp('127.0.0.1', port), await Phone.udp('127.0.0.1', port)];
    await register(alice, 'alice', [`<sip:alice@127.0.0.1:${alice.port}>`]);
    await register(bob, 'bob', [`<sip:bob@127.0.0.1:${bob.port}>`]);
    const inviteLines = (branch: string, cseq: number, toTag: string) => [`INVITE sip:bob@${domain} SIP/2.0`, via(alice, branch), 'Max-Forwards: 70', `From: <sip:alice@${domain}>;tag=a5`, `To: <sip:bob@${domain}>${toTag}`, 'Call-ID: forgot-call', `CSeq: ${cseq} INVITE`, `Contact: <sip:alice@127.0.0.1:${alice.port}>`];
    const bobAnswers = (offered: SipRequest, status: string, body?: string) => {
      const lines = [`SIP/2.0 ${status}`, ...offered.headers.getAll('Via').map((v) => `Via: ${v}`), ...offered.headers.getAll('Record-Route').map((r) => `Record-Route: ${r}`), `From: ${offered.headers.get('From')}`, `To: ${(offered.headers.get('To') ?? '').replace(/;tag=b5$/, '')};tag=b5`, 'Call-ID: forgot-call', `CSeq: ${offered.headers.get('CSeq')}`, `Contact: <sip:bob@127.0.0.1:${bob.port}>`];
      bob.send(body ? withBody(lines, body) : [...lines, 'Content-Length: 0']);
    };
    alice.send(withBody(inviteLines('fg1', 1, ''), sdp(30010)));
    bobAnswers((await bob.next(isRequest('INVITE'))) as SipRequest, '200 OK', sdp(30012));
    await alice.next(isResponse(200, 'INVITE'));
    media.calls.close('forgot-call'); // its media timed out here (a long hold with no RTP)
    // The resume: a re-INVITE with SDP anchors the call afresh; bob's phone, itself re-inviting, answers 491.
    alice.send(withBody(inviteLines('fg2', 2, ';tag=b5'), sdp(30010)));
    const reinvite = (await bob.next(isRequest('INVITE'))) as SipRequest;
    assert.ok(media.calls.has('forgot-call'), 'the re-INVITE took the call up');
    bobAnswers(reinvite, '491 Request Pending');
    await alice.next(isResponse(491, 'INVITE'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(!media.calls.has('forgot-call'), 'the failed re-INVITE let go of the media it began');
    assert.equal(media.calls.anchor.portsInUse, 0);
    // Alice's phone retries (RFC 3261 s14.1): anchored afresh, and answered.
    alice.send(withBody(inviteLines('fg3', 3, ';tag=b5'), sdp(30010)));
    bobAnswers((await bob.next(isRequest('INVITE'))) as SipRequest, '200 OK', sdp(30012));
    const answered = (await alice.next(isResponse(200, 'INVITE'))) as SipResponse;
    assert.match(Buffer.from(answered.body).toString(), /m=audio \d+ RTP\/AVP 0/);
    assert.ok(media.calls.has('forgot-call'));
  } finally {
    await anchored.close();
  }
});

test("an UPDATE that took up a call whose media had timed out here: the call's BYE gives the ports back at once (review R4)", async () => {
  const { media, anchored } = await anchoringHome(47500, 1_000);
  try {
    const { alice, bob } = await answeredCall(anchored, 'update-call');
    // A long hold with no RTP: its media times out here.
    for (let i = 0; i < 40 && media.calls.has('update-call'); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(!media.calls.has('update-call'), 'the media timed out');
    const inDialog = (method: string, cseq: number, branch: string) => [`${method} sip:bob@127.0.0.1:${bob.port} SIP/2.0`, via(alice, branch), 'Max-Forwards: 70', `From: <sip:alice@${domain}>;tag=a1`, `To: <sip:bob@${domain}>;tag=b1`, 'Call-ID: update-call', `CSeq: ${cseq} ${method}`, `Contact: <sip:alice@127.0.0.1:${alice.port}>`];
    const bobAnswers = (request: SipRequest, body?: string) => {
      const lines = ['SIP/2.0 200 OK', ...request.headers.getAll('Via').map((v) => `Via: ${v}`), `From: ${request.headers.get('From')}`, `To: ${request.headers.get('To')}`, 'Call-ID: update-call', `CSeq: ${request.headers.get('CSeq')}`, `Contact: <sip:bob@127.0.0.1:${bob.port}>`];
      bob.send(body ? withBody(lines, body) : [...lines, 'Content-Length: 0']);
    };
    // The resume comes as an UPDATE (RFC 3311): it anchors the call afresh.
    alice.send(withBody(inDialog('UPDATE', 2, 'up-r4'), sdp(30020)));
    bobAnswers((await bob.next(isRequest('UPDATE'))) as SipRequest, sdp(30022));
    assert.match(Buffer.from((await alice.next(isResponse(200, 'UPDATE'))).body).toString(), /m=audio \d+ RTP\/AVP 0/);
    assert.ok(media.calls.has('update-call'), 'the UPDATE took the call up');
    alice.send([...inDialog('BYE', 3, 'bye-r4'), 'Content-Length: 0']);
    bobAnswers((await bob.next(isRequest('BYE'))) as SipRequest);
    await alice.next(isResponse(200, 'BYE'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(!media.calls.has('update-call'), "the BYE ended the call's media");
    assert.equal(media.calls.anchor.portsInUse, 0);
  } finally {
    await anchored.close();
  }
});

test('a re-INVITE that adds video to a call the home anchors: the callee is offered anchor ports for both streams, and video reaches each phone where its SDP said', async () => {
  const { anchored } = await anchoringHome(47600);
  const sockets: UdpSocket[] = [];
  try {
    const { alice, bob } = await answeredCall(anchored, 'video-call');
    const withVideo = (audioPort: number) => `${sdp(audioPort).replace(/a=sendrecv\r\n$/, '')}a=sendrecv\r\nm=video ${audioPort + 4} RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n`;
    const lines = [`INVITE sip:bob@127.0.0.1:${bob.port} SIP/2.0`, via(alice, 'video-re'), 'Max-Forwards: 70', `From: <sip:alice@${domain}>;tag=a1`, `To: <sip:bob@${domain}>;tag=b1`, 'Call-ID: video-call', 'CSeq: 2 INVITE', `Contact: <sip:alice@127.0.0.1:${alice.port}>`];
    alice.send(withBody(lines, withVideo(30000)));
    const reinvite = (await bob.next(isRequest('INVITE'))) as SipRequest;
    const toBob = Buffer.from(reinvite.body).toString();
    const videoPortFor = (text: string) => Number(/m=video (\d+)/.exec(text)?.[1]);
    assert.ok(videoPortFor(toBob) > 0, 'bob is offered the video at an anchor port');
    assert.doesNotMatch(toBob, /m=video 30004/);
    bob.send(withBody(['SIP/2.0 200 OK', ...reinvite.headers.getAll('Via').map((v) => `Via: ${v}`), `From: ${reinvite.headers.get('From')}`, `To: ${reinvite.headers.get('To')}`, 'Call-ID: video-call', 'CSeq: 2 INVITE', `Contact: <sip:bob@127.0.0.1:${bob.port}>`], withVideo(30002)));
    const toAlice = Buffer.from((await alice.next(isResponse(200, 'INVITE'))).body).toString();
    assert.ok(videoPortFor(toAlice) > 0 && videoPortFor(toAlice) !== 30006, 'alice is answered with an anchor port for the video');

    // Each phone's video socket sends to the anchor port it was given; the other phone's receives it.
    const bind = async (port: number) => {
      const socket = createSocket('udp4');
      sockets.push(socket);
      await new Promise<void>((resolve) => socket.bind(port, '127.0.0.1', resolve));
      const got: Buffer[] = [];
      socket.on('message', (m) => got.push(m));
      return { socket, got };
    };
    const [aliceVideo, bobVideo] = [await bind(30004), await bind(30006)];
    const frame = (n: number) => Buffer.alloc(600, n);
    for (let i = 0; i < 40 && (bobVideo.got.length === 0 || aliceVideo.got.length === 0); i++) {
      aliceVideo.socket.send(frame(1), videoPortFor(toAlice), '127.0.0.1');
      bobVideo.socket.send(frame(2), videoPortFor(toBob), '127.0.0.1');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assert.deepEqual(bobVideo.got[0], frame(1), "alice's video reaches bob");
    assert.deepEqual(aliceVideo.got[0], frame(2), "and bob's reaches alice");
  } finally {
    for (const socket of sockets) socket.close();
    await anchored.close();
  }
});

test("a request whose flow token has a MAC of as many characters as ours but other bytes is answered as unmarked (480), not dropped by a RangeError from Node's timingSafeEqual", async () => {
  const alice = await Phone.udp();
  await register(alice, 'alice', [`<sip:alice@127.0.0.1:${alice.port}>`]);
  const n = ++sequence;
  alice.send([`MESSAGE sip:bob@127.0.0.1:${sipPort};p2p-flow=u~127.0.0.1~1~${'é'.repeat(12)} SIP/2.0`, via(alice, `e${n}`), 'Max-Forwards: 70', `From: <sip:alice@${domain}>;tag=e${n}`, `To: <sip:bob@${domain}>`, `Call-ID: e-${n}`, 'CSeq: 1 MESSAGE', 'Content-Length: 0']);
  await alice.next(isResponse(480, 'MESSAGE'));
  assert.equal((await register(alice, 'alice', ['*'], domain, 0)).status, 200);
});

test("a request whose callee's lookup never comes back is answered 504 after 64*T1, not left holding its caller for good (the router's timeouts should call back; this does not rely on it)", async () => {
  const virtual = new VirtualClock();
  const other = await loopbackSipService(domain, {
    credentials: { lookup: (user) => (user === 'alice' ? { MD5: '0'.repeat(32), 'SHA-256': '0'.repeat(64) } : undefined) },
    clock: virtual,
    nonceSecret: new Uint8Array(32).fill(8),
    remote: { resolve: () => {}, peer: (id, address) => ({ transport: 'UDP', remote: address, nodeId: id }) },
  });
  try {
    const alice = await Phone.udp('127.0.0.1', other.address.port);
    assert.equal((await register(alice, 'alice', [`<sip:alice@127.0.0.1:${alice.port}>`])).status, 200);
    invite(alice, 'alice', 'sip:dave@joneses.example');
    await alice.next(isResponse(100, 'INVITE'));
    virtual.runUntil(virtual.now() + 31_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(alice.inbox.filter((m) => m.kind === 'response' && m.status >= 200).length, 1, 'only the REGISTER answered yet');
    virtual.runUntil(virtual.now() + 2_000);
    await alice.next(isResponse(504, 'INVITE'));
  } finally {
    await other.close();
  }
});
