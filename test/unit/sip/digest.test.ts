import assert from 'node:assert/strict';
import { test } from 'node:test';
import { digestResponse, ha1, NonceIssuer } from '../../../src/usages/sip/auth/digest.js';
import { DigestAuthenticator, REGISTRAR_CHALLENGE } from '../../../src/usages/sip/auth/digest-authenticator.js';
import { NonceCounts } from '../../../src/usages/sip/auth/nonce-counts.js';
import { parseSipMessage } from '../../../src/usages/sip/message/parser.js';
import { SipError } from '../../../src/usages/sip/sip-error.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';

/* The digest computations against the worked examples of RFC 2617 s3.5 and RFC 7616 s3.9.1. */
test('RFC 2617 s3.5: MD5 with qop=auth gives the published response', () => {
  const response = digestResponse({
    algorithm: 'MD5',
    ha1: ha1('MD5', 'Mufasa', 'testrealm@host.com', 'Circle Of Life'),
    method: 'GET',
    uri: '/dir/index.html',
    nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
    qop: 'auth',
    nc: '00000001',
    cnonce: '0a4f113b',
  });
  assert.equal(response, '6629fae49393a05397450978507c4ef1');
});

test('RFC 7616 s3.9.1: the same request with SHA-256 and with MD5 gives the published responses', () => {
  const common = {
    method: 'GET',
    uri: '/dir/index.html',
    nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
    qop: 'auth' as const,
    nc: '00000001',
    cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
  };
  assert.equal(
    digestResponse({ ...common, algorithm: 'SHA-256', ha1: ha1('SHA-256', 'Mufasa', 'http-auth@example.org', 'Circle of Life') }),
    '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1',
  );
  assert.equal(digestResponse({ ...common, algorithm: 'MD5', ha1: ha1('MD5', 'Mufasa', 'http-auth@example.org', 'Circle of Life') }), '8ca523f5e9506fed4657c9700eebdbec');
});

test('nonces: our own are fresh, then stale; altered or foreign ones are forged', () => {
  const issuer = new NonceIssuer(new Uint8Array(32).fill(7), 300_000);
  const nonce = issuer.issue(1_000_000);
  assert.equal(issuer.check(nonce, 1_100_000), 'fresh');
  assert.equal(issuer.check(nonce, 1_400_001), 'stale');
  assert.equal(issuer.check(`${nonce.slice(0, -1)}A`, 1_100_000), 'forged');
  assert.equal(issuer.check(new NonceIssuer(new Uint8Array(32).fill(8), 300_000).issue(1_000_000), 1_100_000), 'forged');
  assert.equal(issuer.check('nodot', 1_100_000), 'forged');
});

test('two nonces issued in the same millisecond differ (each has its own nonce-counts) and both are fresh', () => {
  const issuer = new NonceIssuer(new Uint8Array(32).fill(7), 300_000);
  const [first, second] = [issuer.issue(1_000_000), issuer.issue(1_000_000)];
  assert.notEqual(first, second);
  assert.equal(issuer.check(first, 1_000_500), 'fresh');
  assert.equal(issuer.check(second, 1_000_500), 'fresh');
  assert.equal(issuer.check(first, 1_400_000), 'stale');
});

/** dan's account at smiths.example with `password`, and nonces on a virtual clock. */
function dansHome(password: string) {
  const clock = new VirtualClock();
  const issuer = new NonceIssuer(new Uint8Array(32).fill(9), 300_000);
  const credentials = { lookup: (user: string) => (user === 'dan' ? { MD5: ha1('MD5', 'dan', 'smiths.example', password), 'SHA-256': '' } : undefined) };
  const auth = new DigestAuthenticator(credentials, issuer, clock, 'smiths.example', ['MD5'], 300_000);
  /** What the authenticator makes of a REGISTER whose Authorization is `authorization`. */
  const verify = (authorization: string) =>
    auth.verify(parseSipMessage(new TextEncoder().encode(`REGISTER sip:smiths.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.20;branch=z9hG4bK1\r\nFrom: <sip:dan@smiths.example>;tag=1\r\nTo: <sip:dan@smiths.example>\r\nCall-ID: a\r\nCSeq: 1 REGISTER\r\nAuthorization: ${authorization}\r\nContent-Length: 0\r\n\r\n`)) as never, REGISTRAR_CHALLENGE);
  return { clock, auth, verify, fresh: () => issuer.issue(clock.wallTime()) };
}

/** Digest credentials as a phone computes them (MD5, qop=auth). */
function phoneCredentials(user: string, nonce: string, password: string, nc = '00000001'): string {
  const response = digestResponse({ algorithm: 'MD5', ha1: ha1('MD5', user, 'smiths.example', password), method: 'REGISTER', uri: 'sip:smiths.example', nonce, qop: 'auth', nc, cnonce: 'c' });
  return `Digest username="${user}", realm="smiths.example", nonce="${nonce}", uri="sip:smiths.example", response="${response}", algorithm=MD5, qop=auth, nc=${nc}, cnonce="c"`;
}

test('a refused login is told as the family needs it: whose and why, for real attempts only, the name made printable', () => {
  const { clock, auth, verify, fresh } = dansHome('right-password');
  const told: string[] = [];
  auth.onFailure = (f) => told.push(`${f.user}: ${f.reason}`);
  const register = (user: string, nonce: string, password: string) => verify(phoneCredentials(user, nonce, password));
  assert.equal(register('dan', fresh(), 'wrong-password').user, undefined);
  assert.equal(register('nobody', fresh(), 'whatever').user, undefined);
  assert.equal(register('dan', 'forged-nonce', 'wrong-password').user, undefined);
  assert.equal(register('e\u001bvil', fresh(), 'x').user, undefined);
  assert.deepEqual(told, ['dan: wrong password', 'nobody: no such user here', 'e?vil: no such user here'], 'the forged nonce is counted, not told');
  assert.equal(auth.counters.authFailures, 4);
  assert.equal(register('dan', fresh(), 'right-password').user, 'dan');

  // After a restart (a new secret) the phone answers with the nonce it holds: right password, stale=true,
  // so it retries at once with ours instead of showing a failed login; a wrong one is no stale.
  const before = new NonceIssuer(new Uint8Array(32).fill(8), 300_000).issue(clock.wallTime());
  assert.deepEqual(register('dan', before, 'right-password'), { stale: true });
  assert.deepEqual(register('dan', before, 'wrong-password'), { stale: false });
  assert.deepEqual(register('nobody', before, 'right-password'), { stale: false });
  assert.equal(told.length, 3, 'a nonce of another process is never told as a failed login');
});

test('a nonce-count that jumps far ahead costs nothing (no shift by the jump) and leaves no older count usable; one not of 8 hex digits is refused with 400 (fuzz review F5)', () => {
  const counts = new NonceCounts(300_000, 16);
  assert.ok(counts.advance('k', 1, 0));
  assert.ok(counts.advance('k', 0xffffffff, 0), 'a shift by the jump would build a 2^32-bit number, past what a BigInt may hold');
  assert.equal(counts.advance('k', 0xffffffff, 0), false, 'the same count again is a replay');
  assert.equal(counts.advance('k', 1, 0), false, 'an old count is too old to tell');
  assert.ok(counts.advance('k', 0xfffffffe, 0), 'one just below the highest is still taken once');

  const { verify, fresh } = dansHome('pw');
  assert.equal(verify(phoneCredentials('dan', fresh(), 'pw')).user, 'dan');
  for (const nc of ['1', '100000000', 'fffffffff', '0000000g']) assert.throws(() => verify(phoneCredentials('dan', fresh(), 'pw', nc)), (e: unknown) => e instanceof SipError && e.status === 400, nc);
});

test("credentials with an empty nonce and response (an ATA's IMS-style first REGISTER) are challenged, not refused 400 (proxy review P4)", () => {
  const { verify } = dansHome('pw');
  assert.deepEqual(verify('Digest username="dan", realm="smiths.example", nonce="", uri="sip:smiths.example", response=""'), { stale: false });
  assert.throws(() => verify('Digest realm="smiths.example", nonce="", uri="sip:smiths.example", response=""'), (e: unknown) => e instanceof SipError && e.status === 400, 'no username at all is still malformed');
});
