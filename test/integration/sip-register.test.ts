import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { test } from 'node:test';
import { eventually, freeUdpPort, processLab, runCli, startProcess } from '../helpers/processes.js';
import { SKIP_WITHOUT_BARESIP, startBaresip } from '../helpers/baresip.js';
import { runSipp, SKIP_WITHOUT_SIPP } from '../helpers/sipp.js';

/*
 * Phones register to their home peer (RFC 3261 s10, RFC 8760 digest) with SIPp as the phone:
 * two phones for one user over UDP and TCP, a wrong password refused, un-registration, a
 * malformed request answered 400 without losing anything, CRLF keepalives answered.
 */
const { root, running } = processLab('p2psip-sipreg-');

const dir = `${root}/home`;
const domain = 'open.p2psip.lab';
let sipPort = 0;
const sip = () => JSON.parse(runCli(['status', '--data', dir, '--json']).stdout).sip;
const sippArgs = (user: string, password: string, localPort: number, expires: number, transport = 'u1') => [
  '-s', user, '-au', user, '-ap', password, '-set', 'domain', domain, '-set', 'expires', String(expires), '-p', String(localPort), '-t', transport,
];

test('a peer with SIP on: users are added, and SIPp registers with digest over UDP', { skip: SKIP_WITHOUT_SIPP }, async () => {
  sipPort = await freeUdpPort();
  running.push(startProcess(['start', '--data', dir, '--open', '--bind', '127.0.0.1', '--overlay-port', String(await freeUdpPort()), '--sip-port', String(sipPort), '--sip-digest', 'MD5,SHA-256']));
  assert.ok(await eventually(() => sip()?.address === `127.0.0.1:${sipPort}`, 10_000));
  const added = runCli(['user', 'add', 'alice', '--password', 'correct horse', '--data', dir, '--json']);
  assert.equal(added.code, 0, added.stderr);
  assert.equal(JSON.parse(added.stdout).aor, `sip:alice@${domain}`);
  const generated = JSON.parse(runCli(['user', 'add', 'bob', '--data', dir, '--json']).stdout);
  assert.ok(generated.password.length >= 16, 'a password is made when none is given');
  assert.deepEqual(JSON.parse(runCli(['user', 'list', '--data', dir, '--json']).stdout).users.map((u: { user: string }) => u.user), ['alice', 'bob']);
  const run = runSipp('register-digest.xml', `127.0.0.1:${sipPort}`, sippArgs('alice', 'correct horse', await freeUdpPort(), 3600), root);
  assert.equal(run.code, 0, run.errors);
  const s = sip();
  assert.equal(s.bindings, 1);
  assert.equal(s.registrar.challenged, 1);
});

test('a second phone of the same user registers over TCP; both are bound', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const run = runSipp('register-digest.xml', `127.0.0.1:${sipPort}`, sippArgs('alice', 'correct horse', await freeUdpPort(), 3600, 't1'), root);
  assert.equal(run.code, 0, run.errors);
  assert.equal(sip().bindings, 2);
  assert.ok(sip().transport.tcpReceived >= 2);
});

test('a wrong password is challenged again and binds nothing', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const failuresBefore = sip().registrar.authFailures;
  const run = runSipp('register-wrong-password.xml', `127.0.0.1:${sipPort}`, sippArgs('alice', 'wrong horse', await freeUdpPort(), 3600), root);
  assert.equal(run.code, 0, run.errors);
  assert.equal(sip().bindings, 2);
  assert.equal(sip().registrar.authFailures, failuresBefore + 1);
  assert.equal(sip().registrar.lastAuthFailure.user, 'alice');
  assert.equal(sip().registrar.lastAuthFailure.reason, 'wrong password');
  assert.match(runCli(['status', '--data', dir]).stdout, /login\(s\) refused; the last for alice \(wrong password\)/, 'the status page says so');
  assert.ok(await eventually(() => running[0].output.join('').includes('sip-auth-failed'), 5_000), 'and the log');
});

test('a malformed request gets 400 with its reason, and no registration is lost', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const socket = createSocket('udp4');
  const answer = new Promise<string>((resolve) => socket.once('message', (m) => resolve(m.toString())));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const bad = 'REGISTER sip:open.p2psip.lab SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKbad;rport\r\nFrom: <sip:alice@open.p2psip.lab>;tag=1\r\nTo: <sip:alice@open.p2psip.lab>\r\nCall-ID: bad\r\nCSeq: 1 INVITE\r\n\r\n';
  socket.send(bad, sipPort, '127.0.0.1');
  const text = await answer;
  socket.close();
  assert.match(text, /^SIP\/2\.0 400 CSeq method does not match the request\r\n/);
  assert.match(text, /Via: SIP\/2\.0\/UDP 127\.0\.0\.1;branch=z9hG4bKbad;rport/);
  assert.equal(sip().bindings, 2);
  assert.equal(sip().counters.badRequests, 1);
});

test('a request the parser refuses still gets a 400 when its Via and dialog headers can be read', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const socket = createSocket('udp4');
  const answer = new Promise<string>((resolve) => socket.once('message', (m) => resolve(m.toString())));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const bad = 'REGISTER sip:open.p2psip.lab SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKnocolon;rport\r\nFrom: <sip:alice@open.p2psip.lab>;tag=1\r\nTo: <sip:alice@open.p2psip.lab>\r\nCall-ID: nocolon\r\nCSeq: 2 REGISTER\r\nthis line has no colon\r\n\r\n';
  socket.send(bad, sipPort, '127.0.0.1');
  const text = await answer;
  socket.close();
  assert.match(text, /^SIP\/2\.0 400 malformed header line 6\r\n/);
  assert.match(text, /Call-ID: nocolon/);
  assert.equal(sip().bindings, 2);
});

test('CRLF keepalives are answered over UDP and over TCP (RFC 5626 s3.5.1)', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const udp = createSocket('udp4');
  const pong = new Promise<Buffer>((resolve) => udp.once('message', (m) => resolve(m)));
  udp.send('\r\n\r\n', sipPort, '127.0.0.1');
  assert.equal((await pong).toString(), '\r\n');
  udp.close();
  const tcp = connect(sipPort, '127.0.0.1');
  const tcpPong = new Promise<Buffer>((resolve) => tcp.once('data', (d) => resolve(d)));
  tcp.write('\r\n\r\n');
  assert.equal((await tcpPong).toString(), '\r\n');
  tcp.destroy();
});

test('un-registering one phone (Expires: 0) leaves the other bound', { skip: SKIP_WITHOUT_SIPP }, async () => {
  // A third phone registers, then un-registers its own contact.
  const port = await freeUdpPort();
  assert.equal(runSipp('register-digest.xml', `127.0.0.1:${sipPort}`, sippArgs('alice', 'correct horse', port, 3600), root).code, 0);
  assert.equal(sip().bindings, 3);
  const run = runSipp('register-digest.xml', `127.0.0.1:${sipPort}`, sippArgs('alice', 'correct horse', port, 0), root);
  assert.equal(run.code, 0, run.errors);
  assert.equal(sip().bindings, 2);
  assert.ok(sip().registrar.bindingsRemoved >= 1);
});

test('Debian\'s baresip registers to a peer started with no SIP flag at all (the default digest)', { skip: SKIP_WITHOUT_BARESIP }, async () => {
  const home = `${root}/defaults`;
  const port = await freeUdpPort();
  running.push(startProcess(['start', '--data', home, '--open', '--bind', '127.0.0.1', '--overlay-port', String(await freeUdpPort()), '--sip-port', String(port)]));
  const status = () => JSON.parse(runCli(['status', '--data', home, '--json']).stdout).sip;
  assert.ok(await eventually(() => status()?.address === `127.0.0.1:${port}`, 10_000));
  assert.equal(runCli(['user', 'add', 'grandma', '--password', 'grandma-password', '--data', home]).code, 0);
  const phone = startBaresip(`${root}/baresip-defaults`, { user: 'grandma', domain: 'open.p2psip.lab', password: 'grandma-password', proxyPort: port }, await freeUdpPort());
  try {
    assert.ok(await eventually(() => status().bindings === 1, 10_000), `baresip registered: ${phone.output().slice(-1500)}`);
    assert.doesNotMatch(phone.output(), /Function not implemented/);
  } finally {
    phone.child.kill('SIGKILL');
  }
});
