import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkRequest, readEssentials } from '../../../src/usages/sip/message/check.js';
import { parseNameAddr } from '../../../src/usages/sip/message/name-addr.js';
import { parseSipMessage } from '../../../src/usages/sip/message/parser.js';
import { serializeSipMessage } from '../../../src/usages/sip/message/serializer.js';
import type { SipRequest } from '../../../src/usages/sip/message/sip-message.js';
import { parseSipUri } from '../../../src/usages/sip/message/uri.js';
import { parseVia } from '../../../src/usages/sip/message/via.js';
import { SipError } from '../../../src/usages/sip/sip-error.js';

/*
 * Hand-written messages in the spirit of RFC 4475's torture tests: unusual but valid ones that
 * must parse to the right values, and malformed ones that must be refused with the right code.
 */
const enc = (text: string): Uint8Array => new TextEncoder().encode(text.replace(/\n/g, '\r\n'));
const request = (text: string): SipRequest => {
  const message = parseSipMessage(enc(text));
  assert.equal(message.kind, 'request');
  return message as SipRequest;
};

const base = `REGISTER sip:smiths.example SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport
Max-Forwards: 70
To: <sip:alice@smiths.example>
From: "Alice" <sip:alice@smiths.example>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.smiths.example
CSeq: 1 REGISTER
Contact: <sip:alice@192.0.2.10:5060>;expires=3600
Content-Length: 0

`;

test('a plain REGISTER parses to its parts and serialises back to equivalent bytes', () => {
  const r = request(base);
  assert.equal(r.method, 'REGISTER');
  const checked = checkRequest(r);
  assert.equal(checked.cseq.seq, 1);
  assert.equal(checked.from.display, 'Alice');
  assert.equal(checked.from.params.get('tag'), '1928301774');
  assert.equal(checked.vias[0].params.get('rport'), null);
  const again = request(new TextDecoder().decode(serializeSipMessage(r)).replace(/\r\n/g, '\n'));
  assert.deepEqual(again.headers.lines(), r.headers.lines());
});

test('compact forms, odd capitalisation and folded lines mean the same headers', () => {
  const r = request(`INVITE sip:bob@joneses.example SIP/2.0
v: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1
VIA: SIP/2.0/TCP [2001:db8::9]:5061;branch=z9hG4bK2 ,
  SIP/2.0/UDP 192.0.2.11;branch=z9hG4bK3
max-forwards: 69
t: sip:bob@joneses.example
f: <sip:alice@smiths.example>;tag=x
i: folded
 call-id
cSeQ: 7 INVITE
m: <sip:alice@192.0.2.10>
l: 0

`);
  const c = checkRequest(r);
  assert.deepEqual(c.vias.map((v) => v.host), ['192.0.2.10', '[2001:db8::9]', '192.0.2.11']);
  assert.equal(c.vias[1].port, 5061);
  assert.equal(c.vias[1].transport, 'TCP');
  assert.equal(c.callId, 'folded call-id');
  assert.equal(c.maxForwards, 69);
  assert.equal(r.headers.get('Contact'), '<sip:alice@192.0.2.10>');
});

test('escaped users, user parameters, IPv6 hosts and URI headers', () => {
  const uri = parseSipUri('sip:%61lice%20smith;ext=1:pw@[2001:db8::1]:5070;transport=tcp;lr?subject=hi');
  assert.equal(uri.user, 'alice smith;ext=1');
  assert.equal(uri.password, 'pw');
  assert.equal(uri.host, '[2001:db8::1]');
  assert.equal(uri.port, 5070);
  assert.equal(uri.params.get('transport'), 'tcp');
  assert.equal(uri.params.get('lr'), null);
  assert.equal(uri.headers, 'subject=hi');
  assert.equal(parseSipUri('SIP:Bob@Joneses.Example').host, 'joneses.example');
});

test('display names with quotes, commas and angle brackets stay whole', () => {
  const a = parseNameAddr('"Smith, \\"Al\\" <home>" <sip:al@smiths.example>;tag=9');
  assert.equal(a.display, 'Smith, "Al" <home>');
  assert.equal(a.uri, 'sip:al@smiths.example');
  const r = request(base.replace('Contact: <sip:alice@192.0.2.10:5060>;expires=3600', 'Contact: "A, B" <sip:a@192.0.2.10>;q=0.5, <sip:a@192.0.2.11>;expires=60'));
  assert.deepEqual(r.headers.getAll('Contact').map((c) => parseNameAddr(c).uri), ['sip:a@192.0.2.10', 'sip:a@192.0.2.11']);
  // Params after a bare addr-spec belong to the header (RFC 3261 s20.10).
  assert.equal(parseNameAddr('sip:bob@joneses.example;tag=5').params.get('tag'), '5');
});

test('leading blank lines, bare LF line ends, unknown headers and extension methods are accepted', () => {
  const r = parseSipMessage(new TextEncoder().encode('\r\n\r\nNEWMETHOD sip:x@y SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\nX-Weird_Header.1: !%*\nTo: sip:x@y\nFrom: sip:z@y;tag=1\nCall-ID: c\nCSeq: 2 NEWMETHOD\n\n')) as SipRequest;
  assert.equal(r.method, 'NEWMETHOD');
  assert.equal(r.headers.get('X-Weird_header.1'), '!%*');
  const tabbed = parseSipMessage(new TextEncoder().encode('OPTIONS sip:x@y SIP/2.0\r\nSubject: a\tb\r\nTo: sip:x@y\r\n\r\n'));
  assert.equal(tabbed.headers.get('Subject'), 'a\tb', 'a tab is white space');
  assert.doesNotThrow(() => checkRequest(r));
});

test('headers named after what every JavaScript object has (constructor, __proto__, toString) are plain headers, and go on as they came (fuzz review F2)', () => {
  const names = ['Constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'];
  const r = request(`${base.replace('Content-Length: 0', names.map((name, i) => `${name}: v${i}`).join('\n') + '\nContent-Length: 0')}`);
  names.forEach((name, i) => assert.equal(r.headers.get(name), `v${i}`, name));
  const again = Buffer.from(serializeSipMessage(r)).toString();
  for (const [i, name] of ['Constructor', '__proto__', 'Tostring', 'Hasownproperty', 'Valueof'].entries()) assert.match(again, new RegExp(`\r\n${name}: v${i}\r\n`));
});

test('a datagram body is cut at Content-Length; without Content-Length the rest is the body', () => {
  const withBody = base.replace('Content-Length: 0\n\n', 'Content-Length: 4\n\nbodyEXTRA');
  assert.equal(new TextDecoder().decode(request(withBody).body), 'body');
  const noLength = base.replace('Content-Length: 0\n', '') + 'v=0';
  assert.equal(new TextDecoder().decode(request(noLength).body), 'v=0');
});

test('responses parse, including an empty reason phrase', () => {
  const m = parseSipMessage(enc('SIP/2.0 486 Busy Here\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\nTo: <sip:b@j>;tag=2\nFrom: <sip:a@s>;tag=1\nCall-ID: c\nCSeq: 1 INVITE\n\n'));
  assert.equal(m.kind, 'response');
  if (m.kind === 'response') assert.equal(m.reason, 'Busy Here');
  const empty = parseSipMessage(enc('SIP/2.0 200 \nCSeq: 1 X\n\n'));
  assert.equal(empty.kind === 'response' && empty.status, 200);
});

const malformed: [string, string, number, RegExp][] = [
  ['no blank line', base.replace(/\n\n$/, '\n'), 400, /blank line/],
  ['Content-Length past the end', base.replace('Content-Length: 0', 'Content-Length: 99'), 400, /Content-Length/],
  ['negative Content-Length', base.replace('Content-Length: 0', 'Content-Length: -1'), 400, /Content-Length/],
  ['huge Content-Length', base.replace('Content-Length: 0', 'Content-Length: 9999999'), 513, /Too Large/],
  ['SIP/3.0', base.replace('SIP/2.0\n', 'SIP/3.0\n'), 505, /Version/],
  ['garbage start line', base.replace('REGISTER sip:smiths.example SIP/2.0', 'HELLO THERE'), 400, /start line/],
  ['header without colon', base.replace('Max-Forwards: 70', 'Max-Forwards 70'), 400, /header line/],
  ['space in header name', base.replace('Max-Forwards: 70', 'Max Forwards: 70'), 400, /header name/],
  ['fold before any header', 'OPTIONS sip:a@b SIP/2.0\n folded: x\n\n', 400, /folded/],
  ['status 99', 'SIP/2.0 099 Odd\n\n', 400, /status code/],
  // A phone that ends lines at a lone CR would read a Contact this peer never saw (fuzz review F6).
  ['lone CR in a header value', base.replace('Max-Forwards: 70', 'Subject: hi\rContact: <sip:evil@198.51.100.66>\nMax-Forwards: 70'), 400, /lone CR on line 3/],
  ['lone CR in the start line', base.replace('REGISTER sip:smiths.example', 'REGISTER sip:smiths.example\rVia: x'), 400, /lone CR on line 1/],
];

test('malformed messages are refused with the status code and a reason', () => {
  for (const [name, text, status, reason] of malformed) {
    assert.throws(() => parseSipMessage(enc(text)), (e: unknown) => e instanceof SipError && e.status === status && reason.test(e.reason), name);
  }
});

const badRequests: [string, string, number, RegExp][] = [
  ['no Via', base.replace(/^Via:.*\n/m, ''), 400, /missing Via/],
  ['no Call-ID', base.replace(/^Call-ID:.*\n/m, ''), 400, /missing Call-ID/],
  ['CSeq method mismatch', base.replace('CSeq: 1 REGISTER', 'CSeq: 1 INVITE'), 400, /CSeq method/],
  ['CSeq too big', base.replace('CSeq: 1 REGISTER', 'CSeq: 4294967296 REGISTER'), 400, /CSeq/],
  ['Max-Forwards word', base.replace('Max-Forwards: 70', 'Max-Forwards: many'), 400, /Max-Forwards/],
  ['tel: Request-URI', base.replace('REGISTER sip:smiths.example', 'REGISTER tel:+15551234'), 416, /Unsupported URI Scheme/],
  ['bad port', base.replace('REGISTER sip:smiths.example', 'REGISTER sip:smiths.example:99999'), 400, /port/],
  ['unterminated quote in From', base.replace('"Alice"', '"Alice'), 400, /quoted|>|address/],
  ['Via without version', base.replace('SIP/2.0/UDP 192.0.2.10:5060', 'UDP 192.0.2.10'), 400, /Via/],
  ['bad escape in user', base.replace('REGISTER sip:smiths.example', 'REGISTER sip:%zz@smiths.example'), 400, /escape/],
];

test('requests missing or mangling what every request needs are answered 400 (or 416) with the reason', () => {
  for (const [name, text, status, reason] of badRequests) {
    assert.throws(() => checkRequest(request(text)), (e: unknown) => e instanceof SipError && e.status === status && reason.test(e.reason), name);
  }
  assert.throws(() => parseVia('SIP/2.0/UDP'), SipError);
});

test("a request's Date must be an RFC 1123 date in GMT; a response's is not checked (a 200 with a one-digit day still goes through)", () => {
  const base = 'Via: SIP/2.0/UDP 192.168.1.20;branch=z9hG4bK1\r\nFrom: <sip:a@s>;tag=1\r\nTo: <sip:b@s>;tag=2\r\nCall-ID: d\r\nCSeq: 1 INVITE\r\n';
  const oddDate = 'Date: Mon, 6 Jan 2025 10:00:00 GMT\r\n';
  assert.throws(() => checkRequest(request(`INVITE sip:b@s SIP/2.0\r\nMax-Forwards: 70\r\n${base}${oddDate}Content-Length: 0\r\n\r\n`.replace(/\r\n/g, '\n'))), (e: unknown) => e instanceof SipError && e.status === 400 && /Date/.test(e.reason));
  const ok = parseSipMessage(new TextEncoder().encode(`SIP/2.0 200 OK\r\n${base}${oddDate}Content-Length: 0\r\n\r\n`));
  assert.equal(readEssentials(ok).callId, 'd');
});
