import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { connect, type Socket as TcpSocket } from 'node:net';
import { after, before, test } from 'node:test';
import { eventually, freeUdpPort, processLab, runCli, startProcess } from '../helpers/processes.js';
import { tortureMessage, tortureNames } from '../helpers/sip-torture.js';

/*
 * RFC 4475's torture tests against a running peer: every message of the RFC (written for this
 * project in test/integration/sip-torture/, one file per RFC message) is sent over UDP as a
 * phone or a stranger would send it; the framing cases go over TCP. Valid messages must be
 * handled as a proxy and registrar should (forwarded to bob's phone, or answered as the RFC
 * says), invalid ones answered 400 with a reason (or the status the RFC names), responses that
 * match nothing dropped. Afterwards the peer still runs with every binding intact.
 */
const { root, running } = processLab('p2psip-torture-');
const dir = `${root}/home`;
const DOMAIN = 'open.p2psip.lab';
const SILENCE_MS = 600;
let sipPort = 0;
let peer = '';
let phone: Phone;

type Expectation =
  /** The peer itself answers with this status (and a reason matching, when given). */
  | { answer: number; reason?: RegExp }
  /** The request reaches bob's phone unchanged in meaning; the phone's answer comes back. */
  | { forwarded: number }
  /** Nothing comes back, and nothing reaches the phone. */
  | { silent: true };

/** RFC 4475 section, message name and what must happen, in the RFC's order. */
const CASES: [string, string, Expectation][] = [
  ['3.1.1.1 a short tortuous INVITE', 'wsinv', { forwarded: 486 }],
  ['3.1.1.2 a wide range of valid characters', 'intmeth', { forwarded: 200 }],
  ['3.1.1.3 valid use of the % escaping mechanism', 'esc01', { forwarded: 486 }],
  ['3.1.1.4 escaped nulls in URIs', 'escnull', { answer: 401 }],
  ['3.1.1.5 use of % when it is not an escape', 'esc02', { answer: 405 }],
  ['3.1.1.6 message with no LWS between display name and <', 'lwsdisp', { answer: 200 }],
  ['3.1.1.7 long values in header fields', 'longreq', { forwarded: 486 }],
  ['3.1.1.8 extra trailing octets in a UDP datagram', 'dblreq', { answer: 401 }],
  // Read right, the user part names nobody at this home; a stranger's request for anyone not
  // registered here is challenged (the peer is no open relay), never 400.
  ['3.1.1.9 semicolon-separated parameters in the URI user part', 'semiuri', { answer: 407 }],
  ['3.1.1.10 varied and unknown transport types', 'transports', { answer: 200 }],
  ['3.1.1.11 multipart MIME message with a binary part', 'mpart01', { forwarded: 486 }],
  ['3.1.1.12 unusual reason phrase', 'unreason', { silent: true }],
  ['3.1.1.13 empty reason phrase', 'noreason', { silent: true }],
  ['3.1.2.1 extraneous header field separators', 'badinv01', { answer: 400 }],
  ['3.1.2.2 Content-Length larger than the message', 'clerr', { answer: 400, reason: /Content-Length/ }],
  ['3.1.2.3 negative Content-Length', 'ncl', { answer: 400, reason: /Content-Length/ }],
  ['3.1.2.4 request scalar fields with overlarge values', 'scalar02', { answer: 400 }],
  ['3.1.2.5 response scalar fields with overlarge values', 'scalarlg', { silent: true }],
  ['3.1.2.6 unterminated quoted string in display name', 'quotbal', { answer: 400 }],
  ['3.1.2.7 <> enclosing the Request-URI', 'ltgtruri', { answer: 400 }],
  ['3.1.2.8 malformed SIP Request-URI (embedded LWS)', 'lwsruri', { answer: 400 }],
  ['3.1.2.9 multiple SP separating Request-Line elements', 'lwsstart', { answer: 400 }],
  ['3.1.2.10 SP characters at the end of the Request-Line', 'trws', { answer: 400 }],
  ['3.1.2.11 escaped headers in a SIP Request-URI', 'escruri', { answer: 400 }],
  ['3.1.2.12 invalid time zone in Date', 'baddate', { answer: 400, reason: /Date/ }],
  ['3.1.2.13 failure to enclose a name-addr URI in <>', 'regbadct', { answer: 400, reason: /Contact/ }],
  ['3.1.2.14 spaces within addr-spec', 'badaspec', { answer: 400 }],
  ['3.1.2.15 non-token characters in a display name', 'baddn', { answer: 400 }],
  ['3.1.2.16 unknown protocol version', 'badvers', { answer: 505 }],
  ['3.1.2.17 start line and CSeq method mismatch', 'mismatch01', { answer: 400, reason: /CSeq/ }],
  ['3.1.2.18 unknown method with CSeq method mismatch', 'mismatch02', { answer: 400, reason: /CSeq/ }],
  ['3.1.2.19 overlarge response code', 'bigcode', { silent: true }],
  ['3.2.1 missing transaction identifier', 'badbranch', { answer: 200 }],
  ['3.3.1 missing required header fields', 'insuf', { answer: 400 }],
  ['3.3.2 Request-URI with an unknown scheme', 'unkscm', { answer: 416 }],
  ['3.3.3 Request-URI with a known but atypical scheme', 'novelsc', { answer: 416 }],
  ['3.3.4 unknown URI schemes in header fields', 'unksm2', { answer: 400, reason: /To/ }],
  ['3.3.5 Proxy-Require and Require', 'bext01', { answer: 420 }],
  ['3.3.6 unknown Content-Type', 'invut', { forwarded: 486 }],
  ['3.3.7 unknown authorization scheme', 'regaut01', { answer: 401 }],
  ['3.3.8 multiple values in single-value required fields', 'multi01', { answer: 400 }],
  ['3.3.9 multiple Content-Length values', 'mcl01', { answer: 400, reason: /Content-Length/ }],
  ['3.3.10 200 OK with a broadcast Via', 'bcast', { silent: true }],
  ['3.3.11 Max-Forwards of zero', 'zeromf', { answer: 483 }],
  ['3.3.15 unacceptable Accept offering', 'sdp01', { forwarded: 486 }],
  ['3.4.1 INVITE with RFC 2543 syntax', 'inv2543', { forwarded: 486 }],
];

/** The three REGISTERs of section 3.3 that must bind (after digest), and the Contact each binds. */
const BINDING_CASES: [string, string, (me: string) => RegExp][] = [
  ['3.3.12 REGISTER with a contact header parameter', 'cparam01', (me) => new RegExp(`<sip:\\+15551230000@${me}>;unknownparam`)],
  ['3.3.13 REGISTER with a url-parameter', 'cparam02', (me) => new RegExp(`<sip:\\+15551230001@${me};unknownparam>`)],
  ['3.3.14 REGISTER with a URL-escaped header', 'regescrt', (me) => new RegExp(`<sip:carol@${me}\\?Route=%3Csip:${DOMAIN}%3E>`)],
];

/** A torture message for this peer, sent from `me`. */
const message = (name: string, me: string, extra: Record<string, string> = {}): Buffer => tortureMessage(name, { DOMAIN, PEER: peer, ME: me, ...extra });

/** Head lines of a SIP message, folded lines joined. */
function headLines(text: string): string[] {
  const head = text.slice(0, text.indexOf('\r\n\r\n'));
  return head.split('\r\n').reduce<string[]>((lines, line) => (/^[ \t]/.test(line) && lines.length ? [...lines.slice(0, -1), `${lines.at(-1)} ${line.trim()}`] : [...lines, line]), []);
}
const headerValue = (text: string, ...names: string[]) =>
  headLines(text).slice(1).find((l) => names.includes(l.slice(0, l.indexOf(':')).trim().toLowerCase()))?.replace(/^[^:]*:\s*/, '');

/** A UDP socket that sends one message and gathers what comes back. */
async function exchange(build: (me: string) => Buffer, { until = 'final' as 'final' | 'silence' } = {}): Promise<{ responses: string[]; sent: Buffer }> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const me = `127.0.0.1:${socket.address().port}`;
  const sent = build(me);
  const responses: string[] = [];
  const final = new Promise<void>((resolve) => {
    socket.on('message', (m) => {
      responses.push(m.toString('latin1'));
      if (until === 'final' && /^SIP\/2\.0 [2-6]\d\d /.test(m.toString('latin1'))) resolve();
    });
  });
  socket.send(sent, sipPort, '127.0.0.1');
  await Promise.race([final, new Promise((r) => setTimeout(r, until === 'final' ? 5_000 : SILENCE_MS))]);
  socket.close();
  return { responses, sent };
}

/** bob's phone: answers INVITE with 486 and anything else but ACK with 200, and keeps what reached it. */
interface Phone {
  readonly socket: Socket;
  readonly address: string;
  readonly received: Buffer[];
}
async function startPhone(): Promise<Phone> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const received: Buffer[] = [];
  socket.on('message', (m, from) => {
    const text = m.toString('latin1');
    if (text.startsWith('SIP/2.0')) return;
    received.push(m);
    const method = text.slice(0, text.indexOf(' '));
    if (method === 'ACK') return;
    const copied = headLines(text).slice(1).filter((l) => ['via', 'v', 'from', 'f', 'call-id', 'i', 'cseq'].includes(l.slice(0, l.indexOf(':')).trim().toLowerCase()));
    const to = headerValue(text, 'to', 't')!;
    const [status, reason] = method === 'INVITE' ? [486, 'Busy Here'] : [200, 'OK'];
    const response = [`SIP/2.0 ${status} ${reason}`, ...copied, `To: ${to}${/;\s*tag\s*=/.test(to) ? '' : ';tag=phone1'}`, 'Content-Length: 0', '', ''].join('\r\n');
    socket.send(response, from.port, from.address);
  });
  return { socket, address: `127.0.0.1:${socket.address().port}`, received };
}

/** Registers a contact with digest (RFC 8760, MD5) from a given socket, answering the challenge. */
async function registerWithDigest(name: string, user: string, password: string, from?: Socket): Promise<{ challenge: string; answer: string; me: string }> {
  const socket = from ?? createSocket('udp4');
  if (!from) await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const me = `127.0.0.1:${socket.address().port}`;
  const next = () => new Promise<string>((resolve) => socket.once('message', (m) => resolve(m.toString('latin1'))));
  const send = async (bytes: Buffer) => {
    const reply = next();
    socket.send(bytes, sipPort, '127.0.0.1');
    return reply;
  };
  const challenge = await send(message(name, me, { ROUND: '1', AUTH: '' }));
  const params = Object.fromEntries([...(headerValue(challenge, 'www-authenticate') ?? '').matchAll(/(\w+)="?([^",]*)"?/g)].map((m) => [m[1], m[2]]));
  const md5 = (s: string) => createHash('md5').update(s).digest('hex');
  const uri = `sip:${DOMAIN}`;
  const response = md5(`${md5(`${user}:${params.realm}:${password}`)}:${params.nonce}:00000001:c0ffee:auth:${md5(`REGISTER:${uri}`)}`);
  const auth = `Authorization: Digest username="${user}", realm="${params.realm}", nonce="${params.nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee"\n`;
  const answer = await send(message(name, me, { ROUND: '2', AUTH: auth }));
  if (!from) socket.close();
  return { challenge, answer, me };
}

const sip = () => JSON.parse(runCli(['status', '--data', dir, '--json']).stdout).sip;

before(async () => {
  sipPort = await freeUdpPort();
  peer = `127.0.0.1:${sipPort}`;
  running.push(startProcess(['start', '--data', dir, '--open', '--bind', '127.0.0.1', '--overlay-port', String(await freeUdpPort()), '--sip-port', String(sipPort)]));
  assert.ok(await eventually(() => sip()?.address === peer, 10_000), 'the peer runs with SIP on');
  for (const user of ['alice', 'bob', 'carol']) assert.equal(runCli(['user', 'add', user, '--password', `${user}-secret`, '--data', dir]).code, 0);
  phone = await startPhone();
  // bob's phone registers from its own socket, so what is forwarded to bob reaches it.
  const registered = await registerWithDigest('bob-register', 'bob', 'bob-secret', phone.socket);
  assert.match(registered.answer, /^SIP\/2\.0 200 /, registered.answer);
});

after(() => phone?.socket.close());

for (const [title, name, expected] of CASES) {
  test(`RFC 4475 ${title} (${name})`, async () => {
    const before = phone.received.length;
    const { responses, sent } = await exchange((me) => message(name, me), { until: 'silent' in expected ? 'silence' : 'final' });
    const final = responses.find((r) => /^SIP\/2\.0 [2-6]\d\d /.test(r));
    const reached = phone.received.slice(before);
    if ('silent' in expected) {
      assert.deepEqual(responses, [], 'nothing comes back');
      assert.equal(reached.length, 0, 'nothing is sent on to a phone');
    } else if ('answer' in expected) {
      assert.ok(final, `a final answer comes back; got: ${responses.map((r) => r.split('\r\n')[0]).join(' | ') || 'nothing'}`);
      const [, status, reason] = /^SIP\/2\.0 (\d+) (.*)\r\n/.exec(final)!;
      assert.equal(Number(status), expected.answer, `status line: ${final.split('\r\n')[0]}`);
      if (expected.reason) assert.match(reason, expected.reason);
      assert.equal(reached.filter((m) => m.toString('latin1').startsWith('ACK') === false).length, 0, 'nothing is sent on to a phone');
    } else {
      const forwarded = reached.find((m) => !m.toString('latin1').startsWith('ACK'));
      assert.ok(forwarded, `the request reaches bob's phone; answers: ${responses.map((r) => r.split('\r\n')[0]).join(' | ')}`);
      assert.ok(final, 'the phone\'s answer comes back');
      assert.equal(Number(final.slice(8, 11)), expected.forwarded);
      const text = forwarded.toString('latin1');
      assert.equal(headerValue(text, 'call-id', 'i'), headerValue(sent.toString('latin1'), 'call-id', 'i'), 'the same Call-ID');
      // The body goes on byte for byte, binary parts included.
      const body = (m: Buffer) => m.subarray(m.indexOf('\r\n\r\n') + 4);
      assert.ok(body(forwarded).equals(body(sent)), 'the body is unchanged');
    }
  });
}

test('every torture message in test/integration/sip-torture has its case here', () => {
  const covered = new Set([...CASES.map((c) => c[1]), ...BINDING_CASES.map((c) => c[1]), 'bob-register']);
  assert.deepEqual(tortureNames().filter((n) => !covered.has(n)), []);
  assert.equal(covered.size, 50, 'the 49 messages of RFC 4475 and the helper that registers bob');
});

test('RFC 4475 3.1.1.8: the INVITE trailing the REGISTER in one datagram is never acted on', () => {
  assert.equal(phone.received.some((m) => m.toString('latin1').includes('dblreq.0ha0isnda977644900765')), false);
});

for (const [title, name, contact] of BINDING_CASES) {
  test(`RFC 4475 ${title} (${name}): challenged, then bound as written`, async () => {
    const { challenge, answer, me } = await registerWithDigest(name, 'carol', 'carol-secret');
    assert.match(challenge, /^SIP\/2\.0 401 /);
    assert.match(answer, /^SIP\/2\.0 200 /, answer.split('\r\n')[0]);
    const contacts = headLines(answer).filter((l) => /^(contact|m)\s*:/i.test(l)).join('\n');
    assert.match(contacts, contact(me.replaceAll('.', '\\.')));
  });
}

/** One TCP connection to the peer; resolves with everything it said until it closed or went quiet. */
async function overTcp(chunks: (string | Buffer)[], gapMs = 0, quietMs = 800): Promise<{ text: string; closed: boolean }> {
  const socket: TcpSocket = connect(sipPort, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  let text = '';
  let closed = false;
  socket.on('data', (d) => (text += d.toString('latin1')));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  for (const chunk of chunks) {
    socket.write(chunk);
    if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
  }
  for (let waited = 0; waited < 5_000 && !closed; waited += 100) {
    const before = text.length;
    await new Promise((r) => setTimeout(r, 100));
    if (text.length > 0 && text.length === before && waited >= quietMs) break;
  }
  socket.destroy();
  return { text, closed };
}

const optionsOverTcp = (id: string, extra = 'Content-Length: 0\r\n') =>
  `OPTIONS sip:${DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKtcp${id}\r\nMax-Forwards: 70\r\nTo: <sip:${DOMAIN}>\r\nFrom: <sip:caller@${DOMAIN}>;tag=${id}\r\nCall-ID: tcp-${id}\r\nCSeq: 1 OPTIONS\r\n${extra}\r\n`;

test('TCP framing: CRLFs before a request, two requests in one segment, one request in many: each answered once', async () => {
  const pipelined = await overTcp([`\r\n\r\n${optionsOverTcp('a')}${optionsOverTcp('b')}`]);
  assert.equal(pipelined.text.match(/SIP\/2\.0 200 /g)?.length, 2, pipelined.text);
  assert.match(pipelined.text, /Call-ID: tcp-a/);
  assert.match(pipelined.text, /Call-ID: tcp-b/);
  const whole = optionsOverTcp('c');
  const split = await overTcp([whole.slice(0, 7), whole.slice(7, 60), whole.slice(60, -3), whole.slice(-3)], 60);
  assert.equal(split.text.match(/SIP\/2\.0 200 /g)?.length, 1, split.text);
  assert.equal(split.closed, false, 'the connection stays open');
});

test('TCP framing: a body longer than one segment waits for the rest; a body announced but never sent is not answered', async () => {
  const body = 'x'.repeat(3000);
  const withBody = optionsOverTcp('d', `Content-Type: text/plain\r\nContent-Length: ${body.length}\r\n`) + body;
  const slow = await overTcp([withBody.slice(0, 1500), withBody.slice(1500)], 200);
  assert.equal(slow.text.match(/SIP\/2\.0 200 /g)?.length, 1, slow.text);
  const never = await overTcp([optionsOverTcp('e', 'Content-Length: 50\r\n')]);
  assert.equal(never.text, '', 'half a message is never answered');
});

test('TCP framing: no Content-Length, a negative one, or two that differ: 400 with the reason, and the connection is closed', async () => {
  for (const [id, extra] of [['f', ''], ['g', 'Content-Length: -5\r\n'], ['h', 'Content-Length: 0\r\nContent-Length: 12\r\n']]) {
    const answer = await overTcp([optionsOverTcp(id, extra)]);
    assert.match(answer.text, /^SIP\/2\.0 400 [^\r]*Content-Length/, `${id}: ${answer.text.split('\r\n')[0]}`);
    assert.equal(answer.closed, true, `${id}: closed, since the stream's framing is lost`);
  }
});

test('after every torture message the peer still runs, with every binding intact', async () => {
  const status = sip();
  assert.equal(status.bindings, 1 + BINDING_CASES.length, 'bob\'s phone and carol\'s three contacts');
  assert.ok(status.counters.badRequests >= 15, `bad requests counted: ${status.counters.badRequests}`);
  const { responses } = await exchange((me) => message('lwsdisp', me));
  assert.match(responses.at(-1) ?? '', /^SIP\/2\.0 200 /);
});
