import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { eventually, runCli } from '../helpers/processes.js';
import { runSipp, scenarioFrom, SKIP_WITHOUT_SIPP, startSipp } from '../helpers/sipp.js';
import { type Home, LAB_PORT, PUBLIC_PEER, SKIP_WITHOUT_LAB } from './lab.js';
import { natlabFixture, peerStatus } from './fixture.js';

/*
 * A phone behind a home NAT that talks straight to a peer on the internet (RFC 3581, RFC 5626):
 * what reaches it must go to the address and port its NAT gave it, never to the private address
 * it wrote in its Via and Contact, which nobody outside its home can reach.
 *
 *   alice's phone 198.19.1.2:5070 -- port-restricted NAT 198.18.0.11 -- peer 198.18.0.1:5060
 *   bob's phone   198.18.0.1:5072 (on the internet, beside the peer)
 */
const DOMAIN = 'natlab.example';
const SIP_PORT = 5060;
const ALICE_PORT = 5070;
const BOB_PORT = 5072;
const SKIP = SKIP_WITHOUT_LAB || SKIP_WITHOUT_SIPP;
const { lab, root, bundle: BUNDLE } = natlabFixture('p', 'p2psip-natlab-phone-');
let home: Home;

const callerArgs = () => ['-s', 'alice', '-set', 'domain', DOMAIN, '-set', 'callee', 'bob', '-i', home.host, '-p', `${ALICE_PORT}`, '-t', 'u1'];
const bobPhone = (scenario: string) => startSipp(scenario, ['-i', PUBLIC_PEER, '-p', `${BOB_PORT}`, '-t', 'u1'], root, 30, lab.internet);

before(async () => {
  if (SKIP) return;
  lab.build();
  home = lab.addHome('port-restricted');
  const peer = `${root}/peer`;
  assert.equal(runCli(['init', '--data', peer, '--overlay', DOMAIN]).code, 0);
  const process_ = lab.spawn(lab.internet, process.execPath, [BUNDLE, 'start', '--data', peer, '--bind', PUBLIC_PEER, '--overlay-port', `${LAB_PORT}`, '--sip-port', `${SIP_PORT}`]);
  assert.ok(await eventually(() => peerStatus(peer).state === 'joined', 10_000), `the peer runs\n${lab.output(process_)}`);
  for (const user of ['alice', 'bob']) assert.equal(runCli(['user', 'add', user, '--password', `${user}-password`, '--data', peer]).code, 0);
  const register = (user: string, ns: string, host: string, port: number) =>
    runSipp('register-digest.xml', `${PUBLIC_PEER}:${SIP_PORT}`, ['-s', user, '-au', user, '-ap', `${user}-password`, '-set', 'domain', DOMAIN, '-set', 'expires', '3600', '-i', host, '-p', `${port}`, '-t', 'u1'], root, 20, ns);
  const alice = register('alice', home.ns, home.host, ALICE_PORT);
  assert.equal(alice.code, 0, `alice registers through her NAT: ${alice.errors}`);
  const bob = register('bob', lab.internet, PUBLIC_PEER, BOB_PORT);
  assert.equal(bob.code, 0, `bob registers: ${bob.errors}`);
});

test('the first 200 OK is lost in the caller\'s NAT: the callee\'s retransmission still reaches the caller, who completes the call', { skip: SKIP, timeout: 60_000 }, async () => {
  // The home router drops the first 200 OK it would forward inward, and only that one.
  const dropFirst200 = ['FORWARD', '-i', 'wan', '-p', 'udp', '-m', 'string', '--algo', 'bm', '--string', 'SIP/2.0 200 OK', '-m', 'statistic', '--mode', 'nth', '--every', '1000000', '--packet', '0', '-j', 'DROP'];
  lab.in(home.router, 'iptables', ['-I', ...dropFirst200]);
  try {
    const phone = bobPhone(scenarioFrom('uas-answer.xml', { ANSWER_MS: '100' }, root));
    const call = runSipp('uac-call.xml', `${PUBLIC_PEER}:${SIP_PORT}`, callerArgs(), root, 25, home.ns);
    const answered = await phone.done;
    assert.equal(call.code, 0, `the caller learns the call was answered:\n${call.errors}`);
    assert.equal(answered.code, 0, `the callee gets the ACK and the BYE:\n${answered.errors}`);
    const counters = lab.in(home.router, 'iptables', ['-L', 'FORWARD', '-v', '-n', '-x']);
    const dropped = counters.split('\n').find((line) => line.includes('SIP/2.0 200 OK'));
    assert.match(dropped ?? '', /^\s*1\s/, `exactly one 200 OK was dropped:\n${counters}`);
  } finally {
    lab.in(home.router, 'iptables', ['-D', ...dropFirst200]);
  }
});

test('the callee hangs up: its BYE reaches the NATed caller whose Contact carries extra parameters', { skip: SKIP, timeout: 60_000 }, async () => {
  const phone = bobPhone(scenarioFrom('uas-answer-then-bye.xml', { TALK_MS: '300' }, root));
  const call = runSipp('uac-call-callee-hangs-up.xml', `${PUBLIC_PEER}:${SIP_PORT}`, callerArgs(), root, 25, home.ns);
  const hungUp = await phone.done;
  assert.equal(call.code, 0, `the caller gets the BYE through its NAT and answers it:\n${call.errors}`);
  assert.equal(hungUp.code, 0, `the callee's BYE is answered 200:\n${hungUp.errors}`);
});
