import assert from 'node:assert/strict';
import { test } from 'node:test';
import { processLab, runCli } from '../helpers/processes.js';
import { homesWithPhones } from '../helpers/sip-homes.js';
import { SKIP_WITHOUT_SIPP } from '../helpers/sipp.js';

/*
 * When homes have no direct path to each other (RFC 7904 s4 uses an AppAttach'd connection when
 * it can), SIP between them goes through the overlay: here both homes run with --sip-direct off,
 * so the INVITE, every response, the ACK and the BYE between them travel inside overlay
 * messages, sealed hop by hop; the phones see an ordinary call.
 */
const { root, running } = processLab('p2psip-sipoverlay-');
const domain = 'smiths.example';
let homes: Awaited<ReturnType<typeof homesWithPhones>>;
const status = (dir: string) => JSON.parse(runCli(['status', '--data', dir, '--json']).stdout);

test('two homes that send SIP to each other only through the overlay', { skip: SKIP_WITHOUT_SIPP }, async () => {
  homes = await homesWithPhones(root, running, domain, ['--sip-direct', 'off']);
});

test('alice calls bob through the overlay: rings, answered, ACK and BYE, all inside overlay messages between the homes', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const bob = homes.waits('bob', 'uas-answer.xml', { ANSWER_MS: '200' });
  const caller = homes.call('alice', 'a', 'bob');
  assert.equal(caller.code, 0, caller.errors);
  assert.equal((await bob.done).code, 0);
  // B got the INVITE, ACK and BYE through the overlay; A got B's responses the same way.
  const received = (dir: string) => status(dir).sip.transport.overlayReceived;
  assert.ok(received(homes.dirs.b) >= 3, `B received ${received(homes.dirs.b)}`);
  assert.ok(received(homes.dirs.a) >= 3, `A received ${received(homes.dirs.a)}`);
});

test('and back, and a busy 486 the same way', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const alice = homes.waits('alice', 'uas-answer.xml', { ANSWER_MS: '100' });
  assert.equal(homes.call('bob', 'b', 'alice').code, 0);
  assert.equal((await alice.done).code, 0);
  const bob = homes.waits('bob', 'uas-reject.xml', { STATUS: '486 Busy Here' });
  const busy = homes.call('alice', 'a', 'bob', 'uac-rejected.xml', { EXPECT: '486' });
  assert.equal(busy.code, 0, busy.errors);
  assert.equal((await bob.done).code, 0);
});
