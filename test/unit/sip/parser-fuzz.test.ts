import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SeededRandom } from '../../../src/runtime/random.js';
import { checkRequest, readEssentials } from '../../../src/usages/sip/message/check.js';
import { parseNameAddr } from '../../../src/usages/sip/message/name-addr.js';
import { parseSipMessage } from '../../../src/usages/sip/message/parser.js';
import { parseAuthParams } from '../../../src/usages/sip/message/auth-params.js';
import { SipError } from '../../../src/usages/sip/sip-error.js';
import { tortureMessage, tortureNames } from '../../helpers/sip-torture.js';

/*
 * Mutated SIP messages through the parser and every header reader: each either parses or
 * throws a SipError (which becomes a 400-class response). Anything else would crash a peer.
 * The seeds are a few ordinary messages and every RFC 4475 torture message. CI runs 50,000;
 * P2PSIP_FUZZ_MESSAGES=1000000 runs the full million by hand.
 */
const COUNT = Number(process.env.P2PSIP_FUZZ_MESSAGES ?? 50_000);
const random = new SeededRandom(3261);
const torture = tortureNames().map((name) => tortureMessage(name, { DOMAIN: 'smiths.example', PEER: '192.0.2.1:5060', ME: '192.0.2.10:5060' }).toString('latin1'));
const seeds = [...torture, 
  'INVITE sip:bob@joneses.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;rport\r\nMax-Forwards: 70\r\nTo: Bob <sip:bob@joneses.example>\r\nFrom: "Alice" <sip:alice@smiths.example>;tag=9fxced76sl\r\nCall-ID: 3848276298220188511@pc33\r\nCSeq: 2 INVITE\r\nContact: <sip:alice@192.0.2.10>\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n',
  'SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKx;received=2001:db8::1\r\nTo: <sip:a@s>;tag=1\r\nFrom: <sip:a@s>;tag=2\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\nWWW-Authenticate: Digest realm="smiths.example", nonce="abc,def", algorithm=SHA-256, qop="auth"\r\n\r\n',
  'REGISTER sip:s SIP/2.0\nv: SIP/2.0/TCP h;branch=z9hG4bK1\nt: sip:a@s\nf: sip:a@s;tag=1\ni: c\nCSeq: 1 REGISTER\nm: *\nAuthorization: Digest username="a", realm="s", nonce="n", uri="sip:s", response="0123"\n\n',
];
const encoder = new TextEncoder();
const latin1 = (text: string): Uint8Array => Buffer.from(text, 'latin1');

function mutate(input: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(input);
  switch (random.u32() % 6) {
    case 0:
      for (let i = 0; i < 1 + (random.u32() % 6); i++) bytes[random.u32() % bytes.length] = random.u32() & 0xff;
      return bytes;
    case 1:
      return bytes.subarray(0, random.u32() % bytes.length);
    case 2: {
      const at = random.u32() % bytes.length;
      const specials = encoder.encode(['"', '<', '>', ';', ',', ':', '@', '%', '\r\n', '\r\n ', '[', ']', '=', '\\', '?'][random.u32() % 15]);
      return new Uint8Array([...bytes.subarray(0, at), ...specials, ...bytes.subarray(at)]);
    }
    case 3: {
      const at = random.u32() % bytes.length;
      const len = random.u32() % 40;
      return new Uint8Array([...bytes.subarray(0, at), ...bytes.subarray(Math.min(bytes.length, at + len))]);
    }
    case 4:
      return random.bytes(1 + (random.u32() % 300));
    default: {
      const at = random.u32() % bytes.length;
      return new Uint8Array([...bytes.subarray(0, at), ...encoder.encode('9'.repeat(random.u32() % 20)), ...bytes.subarray(at)]);
    }
  }
}

test(`${COUNT.toLocaleString('en')} mutated messages: every one parses or is refused with a SipError, never anything else`, () => {
  let parsed = 0;
  let refused = 0;
  for (let i = 0; i < COUNT; i++) {
    const input = mutate(latin1(seeds[i % seeds.length]));
    try {
      const message = parseSipMessage(input);
      if (message.kind === 'request') checkRequest(message);
      else readEssentials(message);
      for (const contact of message.headers.getAll('Contact')) if (contact !== '*') parseNameAddr(contact);
      for (const auth of [...message.headers.getAll('Authorization'), ...message.headers.getAll('WWW-Authenticate')]) parseAuthParams(auth);
      parsed++;
    } catch (error) {
      if (!(error instanceof SipError)) assert.fail(`${(error as Error).name}: ${(error as Error).message} on ${JSON.stringify(Buffer.from(input).toString('latin1'))}`);
      refused++;
    }
  }
  assert.equal(parsed + refused, COUNT);
  console.log(`parser fuzz: ${COUNT} messages, ${parsed} parsed, ${refused} refused with a SipError`);
  assert.ok(parsed > 1000 && refused > 1000, `both outcomes seen: ${parsed} parsed, ${refused} refused`);
});
