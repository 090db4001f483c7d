import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, test } from 'node:test';
import { type DigestAlgorithm, digestResponse, ha1, NonceIssuer } from '../../../src/usages/sip/auth/digest.js';
import { parseAuthParams } from '../../../src/usages/sip/message/auth-params.js';
import { parseSipMessage } from '../../../src/usages/sip/message/parser.js';
import type { SipMessage, SipResponse } from '../../../src/usages/sip/message/sip-message.js';
import { SipService } from '../../../src/usages/sip/sip-service.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { SystemClock } from '../../../src/runtime/clock.js';

/*
 * The registrar over real UDP on loopback, with our own digest client: SHA-256 (which SIPp 3.6
 * cannot do), Min-Expires, Contact *, CSeq ordering, another user's credentials, stale nonces.
 */
const realm = 'smiths.example';
const users: Record<string, string> = { alice: 'alice-password', bob: 'bob-password' };
let service: SipService;
const socket = createSocket('udp4');
const clock = new SystemClock();

before(async () => {
  service = await SipService.start({
    bind: { host: '127.0.0.1', port: 0 },
    advertisedHost: '127.0.0.1',
    realm,
    domains: [realm],
    requireAuth: true,
    algorithms: ['SHA-256', 'MD5'], // as `--sip-digest SHA-256,MD5` sets it (the default offers MD5 alone)
    credentials: { lookup: (u) => (users[u] ? { MD5: ha1('MD5', u, realm, users[u]), 'SHA-256': ha1('SHA-256', u, realm, users[u]) } : undefined) },
    clock,
    log: silentLogger,
    nonceSecret: new Uint8Array(32).fill(1),
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
});
after(async () => {
  socket.close();
  await service.close();
});

let branch = 0;

/** The request's Call-ID and CSeq: an answer is matched by them, not by arrival order. */
function transactionOf(lines: string[]): string {
  return `${lines.find((l) => l.startsWith('Call-ID:'))!.slice(8).trim()} ${lines.find((l) => l.startsWith('CSeq:'))!.slice(5).trim()}`;
}

/**
 * Sends a request and resolves with its first answer of at least `minStatus`. Answers to other
 * requests are ignored: a retransmitted final response of an earlier test (Timer G resends a
 * 4xx to an INVITE until its ACK) must never be read as this request's answer.
 */
function exchange(lines: string[], minStatus: number): Promise<SipResponse> {
  const wanted = transactionOf(lines);
  const answer = new Promise<SipResponse>((resolve) => {
    const listen = (m: Buffer) => {
      const r = parseSipMessage(new Uint8Array(m)) as SipResponse;
      if (`${r.headers.get('Call-ID')} ${r.headers.get('CSeq')}` !== wanted || r.status < minStatus) return;
      socket.off('message', listen);
      resolve(r);
    };
    socket.on('message', listen);
  });
  socket.send(`${lines.join('\r\n')}\r\n\r\n`, service.address.port, '127.0.0.1');
  return answer;
}

const send = (lines: string[]) => exchange(lines, 100);
/** Sends a request and waits past provisional responses for the final one. */
const sendFinal = (lines: string[]) => exchange(lines, 200);

function register(user: string, opts: { cseq: number; callId?: string; contact?: string; expires?: number; authorization?: string; to?: string }): string[] {
  const port = socket.address().port;
  return [
    `REGISTER sip:${realm} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK${++branch};rport`,
    `From: <sip:${user}@${realm}>;tag=f${branch}`,
    `To: <sip:${opts.to ?? user}@${realm}>`,
    `Call-ID: ${opts.callId ?? `call-${user}`}`,
    `CSeq: ${opts.cseq} REGISTER`,
    `Contact: ${opts.contact ?? `<sip:${user}@127.0.0.1:${port}>`}`,
    ...(opts.expires !== undefined ? [`Expires: ${opts.expires}`] : []),
    ...(opts.authorization ? [`Authorization: ${opts.authorization}`] : []),
    'Content-Length: 0',
  ];
}

/** A phone's credentials; `nc` counts its uses of one nonce (RFC 7616 s3.4.5: each use counts higher). */
function credentials(challenge: SipResponse, algorithm: DigestAlgorithm, user: string, password: string, nonceOverride?: string, nc = '00000001'): string {
  const header = challenge.headers.getAll('WWW-Authenticate').map(parseAuthParams).find((a) => a.params.get('algorithm') === algorithm)!;
  const nonce = nonceOverride ?? header.params.get('nonce')!;
  const uri = `sip:${realm}`;
  const response = digestResponse({ algorithm, ha1: ha1(algorithm, user, realm, password), method: 'REGISTER', uri, nonce, qop: 'auth', nc, cnonce: 'c0ffee' });
  return `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=${algorithm}, qop=auth, nc=${nc}, cnonce="c0ffee"`;
}

test('the challenge offers SHA-256 first, then MD5; SHA-256 credentials register', async () => {
  const challenge = await send(register('alice', { cseq: 1, expires: 600 }));
  assert.equal(challenge.status, 401);
  assert.deepEqual(challenge.headers.getAll('WWW-Authenticate').map((h) => parseAuthParams(h).params.get('algorithm')), ['SHA-256', 'MD5']);
  const ok = await send(register('alice', { cseq: 2, expires: 600, authorization: credentials(challenge, 'SHA-256', 'alice', users.alice) }));
  assert.equal(ok.status, 200);
  assert.match(ok.headers.get('Contact')!, /expires=(600|599)/);
  assert.ok(ok.headers.get('Date'));
});

test("credentials of another user do not change alice's bindings (403)", async () => {
  const challenge = await send(register('alice', { cseq: 3 }));
  const refused = await send(register('bob', { cseq: 4, to: 'alice', authorization: credentials(challenge, 'MD5', 'bob', users.bob) }));
  assert.equal(refused.status, 403);
});

test('too brief an interval gets 423 with Min-Expires', async () => {
  const challenge = await send(register('alice', { cseq: 5 }));
  const brief = await send(register('alice', { cseq: 6, expires: 10, authorization: credentials(challenge, 'MD5', 'alice', users.alice) }));
  assert.equal(brief.status, 423);
  assert.equal(brief.headers.get('Min-Expires'), '60');
});

test('an older CSeq in the same Call-ID is refused; a stale nonce is challenged with stale=true', async () => {
  const challenge = await send(register('alice', { cseq: 7 }));
  const old = await send(register('alice', { cseq: 1, authorization: credentials(challenge, 'MD5', 'alice', users.alice) }));
  assert.equal(old.status, 500);
  // One of our own nonces, ten minutes old (they live five): stale, so the phone retries quietly.
  const staleNonce = new NonceIssuer(new Uint8Array(32).fill(1), 300_000).issue(Date.now() - 10 * 60_000);
  const stale = await send(register('alice', { cseq: 8, authorization: credentials(challenge, 'MD5', 'alice', users.alice, staleNonce) }));
  assert.equal(stale.status, 401);
  assert.ok(stale.headers.getAll('WWW-Authenticate').every((h) => h.includes('stale=true')));
  // A nonce that is not ours (another process's, before a restart): stale only with a digest that proves
  // the password (RFC 2617 s3.2.1), so a phone retries at once; with a wrong password it is no stale.
  const forgedNonce = `${(Date.now() - 1000).toString(36)}.notOurMac`;
  const forged = await send(register('alice', { cseq: 9, authorization: credentials(challenge, 'MD5', 'alice', 'not-the-password', forgedNonce) }));
  assert.equal(forged.status, 401);
  assert.equal(forged.headers.get('WWW-Authenticate')!.includes('stale=true'), false, 'a foreign nonce with a wrong digest is not called stale');
  const restarted = await send(register('alice', { cseq: 10, authorization: credentials(challenge, 'MD5', 'alice', users.alice, forgedNonce) }));
  assert.equal(restarted.status, 401);
  assert.ok(restarted.headers.getAll('WWW-Authenticate').every((h) => h.includes('stale=true')), 'a foreign nonce with the right digest is stale');
});

test('Contact: * with Expires: 0 removes every binding; Contact: * without it is a 400', async () => {
  const challenge = await send(register('alice', { cseq: 10 }));
  const bad = await send(register('alice', { cseq: 10, contact: '*', expires: 60, authorization: credentials(challenge, 'MD5', 'alice', users.alice) }));
  assert.equal(bad.status, 400);
  assert.equal(service.location.bindings('alice@smiths.example').length, 1);
  const all = await send(register('alice', { cseq: 11, contact: '*', expires: 0, authorization: credentials(challenge, 'MD5', 'alice', users.alice, undefined, '00000002') }));
  assert.equal(all.status, 200);
  assert.equal(service.location.bindings('alice@smiths.example').length, 0);
});

test('a REGISTER for a domain this peer does not serve is 404; OPTIONS is answered; an INVITE to a user with no phone on gets 480', async () => {
  const foreign = await send(register('alice', { cseq: 12 }).map((l) => l.replace(`To: <sip:alice@${realm}>`, 'To: <sip:alice@elsewhere.example>')));
  assert.equal(foreign.status, 404);
  const port = socket.address().port;
  const options = await send([`OPTIONS sip:${realm} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKopt`, `From: <sip:x@${realm}>;tag=1`, `To: <sip:${realm}>`, 'Call-ID: o', 'CSeq: 1 OPTIONS', 'Content-Length: 0']);
  assert.equal(options.status, 200);
  assert.ok(options.headers.getAll('Allow').includes('REGISTER'));
  const invite = await sendFinal([`INVITE sip:bob@${realm} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKinv`, `From: <sip:alice@${realm}>;tag=1`, `To: <sip:bob@${realm}>`, 'Call-ID: i', 'CSeq: 1 INVITE', 'Content-Length: 0']);
  assert.equal(invite.status, 480);
  // The ACK ends the server transaction, so the 480 is not resent into the tests that follow.
  const ack = [`ACK sip:bob@${realm} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKinv`, `From: <sip:alice@${realm}>;tag=1`, `To: ${invite.headers.get('To')}`, 'Call-ID: i', 'CSeq: 1 ACK', 'Content-Length: 0'];
  socket.send(`${ack.join('\r\n')}\r\n\r\n`, service.address.port, '127.0.0.1');
});

test('a captured REGISTER replayed from another address, nonce and count unchanged, is challenged again and moves no binding', async () => {
  const challenge = await send(register('bob', { cseq: 1, expires: 600, callId: 'replay-1' }));
  const lines = register('bob', { cseq: 2, expires: 600, callId: 'replay-1', authorization: credentials(challenge, 'MD5', 'bob', users.bob) });
  assert.equal((await send(lines)).status, 200);
  const before = service.location.bindings(`bob@${realm}`).map((b) => `${b.flow.remote.host}:${b.flow.remote.port}`);
  // The attacker's copy, from elsewhere: a later CSeq (the digest does not cover it), the same credentials.
  const attacker = createSocket('udp4');
  await new Promise<void>((resolve) => attacker.bind(0, '127.0.0.1', () => resolve()));
  const answer = new Promise<SipResponse | undefined>((resolve) => {
    attacker.once('message', (m) => resolve(parseSipMessage(new Uint8Array(m)) as SipResponse));
    setTimeout(() => resolve(undefined), 3000);
  });
  const replayed = lines.map((l) => (l.startsWith('CSeq:') ? 'CSeq: 3 REGISTER' : l.startsWith('Via:') ? l.replace(/branch=[^;]+/, 'branch=z9hG4bKreplayed') : l));
  attacker.send(`${replayed.join('\r\n')}\r\n\r\n`, service.address.port, '127.0.0.1');
  const status = (await answer)?.status;
  attacker.close();
  assert.equal(status, 401);
  assert.deepEqual(service.location.bindings(`bob@${realm}`).map((b) => `${b.flow.remote.host}:${b.flow.remote.port}`), before);
  // The phone itself goes on with the next count on the same nonce.
  const next = register('bob', { cseq: 4, expires: 600, callId: 'replay-1', authorization: credentials(challenge, 'MD5', 'bob', users.bob, undefined, '00000002') });
  assert.equal((await send(next)).status, 200);
});

test('a stranger (no phone of this home, no other home) gets 407 for relaying a MESSAGE onward; with a user\'s digest it is relayed', async () => {
  const stranger = createSocket('udp4');
  await new Promise<void>((resolve) => stranger.bind(0, '127.0.0.1', () => resolve()));
  const port = stranger.address().port;
  const message = (cseq: number, authorization?: string) =>
    [`MESSAGE sip:someone@127.0.0.1:9 SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKrelay${cseq};rport`, `From: <sip:spam@${realm}>;tag=s`, 'To: <sip:someone@127.0.0.1:9>', 'Call-ID: relay', `CSeq: ${cseq} MESSAGE`, ...(authorization ? [`Proxy-Authorization: ${authorization}`] : []), 'Content-Length: 0'].join('\r\n') + '\r\n\r\n';
  const next = () =>
    new Promise<SipResponse | undefined>((resolve) => {
      stranger.once('message', (m) => resolve(parseSipMessage(new Uint8Array(m)) as SipResponse));
      setTimeout(() => resolve(undefined), 1500);
    });
  let answer = next();
  stranger.send(message(1), service.address.port, '127.0.0.1');
  const challenge = (await answer)!;
  assert.equal(challenge.status, 407);
  const offer = parseAuthParams(challenge.headers.get('Proxy-Authenticate')!).params;
  const forwardedBefore = (service.status().proxy as { forwarded: number }).forwarded;
  const uri = 'sip:someone@127.0.0.1:9';
  const response = digestResponse({ algorithm: 'MD5', ha1: ha1('MD5', 'alice', realm, users.alice), method: 'MESSAGE', uri, nonce: offer.get('nonce')!, qop: 'auth', nc: '00000001', cnonce: 'ab' });
  answer = next();
  stranger.send(message(2, `Digest username="alice", realm="${realm}", nonce="${offer.get('nonce')}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="ab"`), service.address.port, '127.0.0.1');
  const after = await answer;
  stranger.close();
  assert.notEqual(after?.status, 407);
  assert.equal((service.status().proxy as { forwarded: number }).forwarded, forwardedBefore + 1, 'relayed once authenticated');
});

/** A phone on its own UDP socket: what it receives waits in order until `next` takes what matches (undefined after `ms`). */
async function udpPhone() {
  const udp = createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', () => resolve()));
  const inbox: SipMessage[] = [];
  udp.on('message', (m) => inbox.push(parseSipMessage(new Uint8Array(m))));
  const next = async (match: (m: SipMessage) => boolean, ms = 1500) => {
    for (let waited = 0; waited < ms; waited += 10) {
      const at = inbox.findIndex(match);
      if (at >= 0) return inbox.splice(at, 1)[0];
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return undefined;
  };
  return { udp, port: udp.address().port, next, send: (lines: string[]) => udp.send(lines.join('\r\n') + '\r\n\r\n', service.address.port, '127.0.0.1') };
}

test("an INVITE proven by a user's digest from a flow no phone registered (a pjsip phone's large INVITE on TCP): its 2xx's ACK, which cannot be challenged, is relayed; an ACK of another dialog is not (SIP review F1)", async () => {
  const [caller, callee] = [await udpPhone(), await udpPhone()];
  try {
    const uri = `sip:dave@127.0.0.1:${callee.port}`;
    const invite = (cseq: number, authorization?: string) => [`INVITE ${uri} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${caller.port};branch=z9hG4bKinv${cseq};rport`, 'Max-Forwards: 70', `From: <sip:alice@${realm}>;tag=a1`, `To: <${uri}>`, 'Call-ID: proven-ack', `CSeq: ${cseq} INVITE`, `Contact: <sip:alice@127.0.0.1:${caller.port}>`, ...(authorization ? [`Proxy-Authorization: ${authorization}`] : []), 'Content-Length: 0'];
    caller.send(invite(1));
    const challenge = (await caller.next((m) => m.kind === 'response' && m.status === 407)) as SipResponse;
    const nonce = parseAuthParams(challenge.headers.get('Proxy-Authenticate')!).params.get('nonce')!;
    const response = digestResponse({ algorithm: 'MD5', ha1: ha1('MD5', 'alice', realm, users.alice), method: 'INVITE', uri, nonce, qop: 'auth', nc: '00000001', cnonce: 'ab' });
    caller.send(invite(2, `Digest username="alice", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="ab"`));
    const reached = await callee.next((m) => m.kind === 'request' && m.method === 'INVITE');
    assert.ok(reached && reached.kind === 'request');
    callee.send(['SIP/2.0 200 OK', ...reached.headers.getAll('Via').map((v) => `Via: ${v}`), ...reached.headers.getAll('Record-Route').map((r) => `Record-Route: ${r}`), `From: ${reached.headers.get('From')}`, `To: ${reached.headers.get('To')};tag=d1`, 'Call-ID: proven-ack', 'CSeq: 2 INVITE', `Contact: <${uri}>`, 'Content-Length: 0']);
    const ok = (await caller.next((m) => m.kind === 'response' && m.status === 200)) as SipResponse;
    assert.ok(ok);
    const ack = (fromTag: string, branch: string) => [`ACK ${uri} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${caller.port};branch=z9hG4bK${branch};rport`, 'Max-Forwards: 70', ...ok.headers.getAll('Record-Route').reverse().map((r) => `Route: ${r}`), `From: <sip:alice@${realm}>;tag=${fromTag}`, `To: ${ok.headers.get('To')}`, 'Call-ID: proven-ack', 'CSeq: 2 ACK', 'Content-Length: 0'];
    caller.send(ack('other', 'ackx'));
    assert.equal(await callee.next((m) => m.kind === 'request' && m.method === 'ACK', 500), undefined, 'an ACK of a dialog nobody proved goes nowhere');
    // The proven dialog's ACK sent somewhere its INVITE did not go: not relayed there.
    const elsewhere = await udpPhone();
    try {
      caller.send(ack('a1', 'acky').map((line) => line.replace(`ACK ${uri} `, `ACK sip:dave@127.0.0.1:${elsewhere.port} `)));
      assert.equal(await elsewhere.next(() => true, 500), undefined, 'the allowance is for the callee only');
    } finally {
      elsewhere.udp.close();
    }
    caller.send(ack('a1', 'ack1'));
    assert.ok(await callee.next((m) => m.kind === 'request' && m.method === 'ACK'), "the proven caller's ACK reaches the callee");
  } finally {
    caller.udp.close();
    callee.udp.close();
  }
});

test('a contact with a malformed q is refused with 400; q=0.5 and q=1.000 are taken', async () => {
  const challenge = await send(register('alice', { cseq: 20, callId: 'q-values' }));
  const auth = (nc: string) => credentials(challenge, 'MD5', 'alice', users.alice, undefined, nc);
  for (const [i, q] of ['abc', '1.5', '0.1234', ''].entries()) {
    const refused = await send(register('alice', { cseq: 21 + i, callId: 'q-values', contact: `<sip:alice@127.0.0.1:7000>;q=${q}`, authorization: auth(`0000000${i + 1}`) }));
    assert.equal(refused.status, 400, `q=${q}`);
  }
  const ok = await send(register('alice', { cseq: 30, callId: 'q-values', contact: '<sip:alice@127.0.0.1:7001>;q=0.5, <sip:alice@127.0.0.1:7002>;q=1.000', expires: 600, authorization: auth('00000005') }));
  assert.equal(ok.status, 200);
  const qs = service.location.bindings(`alice@${realm}`).filter((b) => b.contact.includes(':700')).map((b) => b.q);
  assert.deepEqual(qs.sort(), [0.5, 1]);
});

test('a phone that registers again from a new contact with the same +sip.instance replaces its old binding (no ghost after a reboot)', async () => {
  const instance = '"<urn:uuid:00000000-0000-1000-8000-00a0c91e6bf6>"';
  const challenge = await send(register('bob', { cseq: 1, callId: 'boot-1' }));
  const first = await send(register('bob', { cseq: 2, callId: 'boot-1', contact: `<sip:bob@127.0.0.1:7100>;+sip.instance=${instance}`, expires: 600, authorization: credentials(challenge, 'MD5', 'bob', users.bob) }));
  assert.equal(first.status, 200);
  // Rebooted: a new Call-ID, a new port, the same instance.
  const again = await send(register('bob', { cseq: 1, callId: 'boot-2' }));
  const second = await send(register('bob', { cseq: 2, callId: 'boot-2', contact: `<sip:bob@127.0.0.1:7200>;+sip.instance=${instance}`, expires: 600, authorization: credentials(again, 'MD5', 'bob', users.bob) }));
  assert.equal(second.status, 200);
  const contacts = service.location.bindings(`bob@${realm}`).map((b) => b.contact);
  assert.ok(contacts.includes('sip:bob@127.0.0.1:7200'));
  assert.ok(!contacts.includes('sip:bob@127.0.0.1:7100'), `the old contact is gone: ${contacts}`);
});

test('a phone may use counts of one nonce out of order (parallel requests); each count is good once', async () => {
  const challenge = await send(register('alice', { cseq: 40, callId: 'parallel' }));
  const with_ = (cseq: number, nc: string) => register('alice', { cseq, callId: 'parallel', expires: 600, authorization: credentials(challenge, 'MD5', 'alice', users.alice, undefined, nc) });
  assert.equal((await send(with_(41, '00000003'))).status, 200);
  assert.equal((await send(with_(42, '00000002'))).status, 200, 'an earlier count arriving late is fine');
  const again = await send(with_(43, '00000002'));
  assert.equal(again.status, 401, 'the same count twice is a replay');
  assert.match(again.headers.get('WWW-Authenticate')!, /stale=true/, 'challenged as stale, so a phone retries without asking for the password');
});

test('a malformed request gets 400 with a To tag (s8.2.6.2); a malformed ACK gets nothing at all (SIP review F4)', async () => {
  const phone = await udpPhone();
  try {
    const malformed = (method: string) => [`${method} sip:bob@${realm} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${phone.port};branch=z9hG4bKbad${method};rport`, 'Max-Forwards: 300', `From: <sip:alice@${realm}>;tag=a`, `To: <sip:bob@${realm}>`, `Call-ID: bad-${method}`, `CSeq: 1 ${method}`, 'Content-Length: 0'];
    phone.send(malformed('ACK'));
    phone.send(malformed('OPTIONS'));
    const answer = (await phone.next((m) => m.kind === 'response')) as SipResponse;
    assert.equal(`${answer.status} ${answer.headers.get('CSeq')}`, '400 1 OPTIONS');
    assert.match(answer.headers.get('To')!, /^<sip:bob@smiths\.example>;tag=[0-9a-f]{10}$/);
    assert.equal(await phone.next((m) => m.kind === 'response', 200), undefined, 'the ACK is not answered');
  } finally {
    phone.udp.close();
  }
});

test("an OPTIONS keepalive that carries the phone's outbound-proxy Route to us is answered by us, at any SIP port (SIP review F5)", async () => {
  const phone = await udpPhone();
  try {
    const ours = `127.0.0.1:${service.address.port}`;
    const options = (uri: string, route: string, n: number) => [`OPTIONS ${uri} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${phone.port};branch=z9hG4bKka${n};rport`, 'Max-Forwards: 70', `Route: ${route}`, `From: <sip:alice@${realm}>;tag=k${n}`, `To: <${uri}>`, `Call-ID: keepalive-${n}`, `CSeq: ${n} OPTIONS`, 'Content-Length: 0'];
    const cases = [
      [`sip:${realm}`, `<sip:${realm};lr>`],
      [`sip:${ours}`, `<sip:${ours};lr>`],
      [`sip:alice@${ours}`, `<sip:${realm};lr>`],
    ];
    for (const [i, [uri, route]] of cases.entries()) phone.send(options(uri, route, i + 1));
    // A dialog's request to a phone's Contact (no user) carries only our Route: it is the phone's, not ours.
    phone.send([`BYE sip:127.0.0.1:${phone.port} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${phone.port};branch=z9hG4bKbye9;rport`, 'Max-Forwards: 70', `Route: <sip:${ours};lr>`, `From: <sip:alice@${realm}>;tag=k9`, `To: <sip:bob@${realm}>;tag=b9`, 'Call-ID: dialog-9', 'CSeq: 9 BYE', 'Content-Length: 0']);
    const answers: string[] = [];
    for (let i = 0; i < 4; i++) {
      const answer = (await phone.next((m) => m.kind === 'response')) as SipResponse | undefined;
      if (answer) answers.push(`${answer.headers.get('CSeq')} ${answer.status}`);
    }
    assert.deepEqual(answers.sort(), ['1 OPTIONS 200', '2 OPTIONS 200', '3 OPTIONS 200', '9 BYE 407'], "the BYE goes to the proxy (a stranger's, so challenged), not answered 405 by us");
  } finally {
    phone.udp.close();
  }
});

test('a phone whose Contact changes while its socket stays (new Call-ID, no +sip.instance) replaces its old binding; another socket, one Call-ID\'s several Contacts, phones behind an outbound proxy and phones that name themselves keep theirs (SIP review P6, review F1)', async () => {
  const [phone, other] = [await udpPhone(), await udpPhone()];
  const aor = `carol@${realm}`;
  users.carol = 'carol-password';
  /** Registers `contacts` for carol from `from` under `callId`, answering the challenge; `forwarded`: through a proxy in front (two Vias). */
  const registerFrom = async (from: typeof phone, callId: string, contacts: string, expires = 600, forwarded = false) => {
    const lines = (cseq: number, authorization?: string) => {
      const request = register('carol', { cseq, callId, contact: contacts, expires, authorization });
      return forwarded ? [request[0], `Via: SIP/2.0/UDP 127.0.0.1:${from.port};branch=z9hG4bKsbc${callId}${cseq}`, ...request.slice(1)] : request;
    };
    from.send(lines(1));
    const challenge = (await from.next((m) => m.kind === 'response' && m.headers.get('Call-ID') === callId)) as SipResponse;
    assert.equal(challenge.status, 401);
    from.send(lines(2, credentials(challenge, 'MD5', 'carol', users.carol)));
    const answer = (await from.next((m) => m.kind === 'response' && m.headers.get('Call-ID') === callId)) as SipResponse;
    assert.equal(answer.status, 200);
  };
  const contacts = () => service.location.bindings(aor).map((b) => b.contact).sort();
  try {
    await registerFrom(phone, 'desk-1', '<sip:carol@127.0.0.1:7300>');
    await registerFrom(other, 'other-1', '<sip:carol@127.0.0.1:7400>');
    assert.deepEqual(contacts(), ['sip:carol@127.0.0.1:7300', 'sip:carol@127.0.0.1:7400']);
    // The desk phone's line port changed; it registers anew from the same socket.
    await registerFrom(phone, 'desk-2', '<sip:carol@127.0.0.1:7301>');
    assert.deepEqual(contacts(), ['sip:carol@127.0.0.1:7301', 'sip:carol@127.0.0.1:7400'], 'the ghost is gone; the phone on another socket stays');
    // An ATA's two lines in one registration: both stay.
    await registerFrom(phone, 'desk-2b', '<sip:carol@127.0.0.1:7301>, <sip:carol@127.0.0.1:7302>');
    assert.deepEqual(contacts(), ['sip:carol@127.0.0.1:7301', 'sip:carol@127.0.0.1:7302', 'sip:carol@127.0.0.1:7400']);
    // Two phones behind an outbound proxy (its socket, two Vias), and two that name themselves: each keeps its binding (review F1).
    await registerFrom(other, 'sbc-a', '<sip:carol@127.0.0.1:7500>', 600, true);
    await registerFrom(other, 'sbc-b', '<sip:carol@127.0.0.1:7501>', 600, true);
    await registerFrom(other, 'named-a', '<sip:carol@127.0.0.1:7600>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-0000000000aa>"');
    await registerFrom(other, 'named-b', '<sip:carol@127.0.0.1:7601>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-0000000000bb>"');
    assert.deepEqual(contacts().filter((c) => /:7[56]/.test(c)), ['sip:carol@127.0.0.1:7500', 'sip:carol@127.0.0.1:7501', 'sip:carol@127.0.0.1:7600', 'sip:carol@127.0.0.1:7601']);
  } finally {
    await registerFrom(phone, 'desk-end', '*', 0).catch(() => undefined);
    phone.udp.close();
    other.udp.close();
    delete users.carol;
  }
  assert.deepEqual(contacts(), [], 'carol is left with no phone for the tests after this one');
});
