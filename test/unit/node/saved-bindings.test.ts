import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { SavedBindings } from '../../../src/node/saved-bindings.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';
import { type Binding, LocationService } from '../../../src/usages/sip/registrar/location.js';

/*
 * The home's registrations on disk, so a restarted peer still reaches its phones: UDP bindings
 * come back with their expiry, Call-ID, CSeq, q, instance and parameters; TCP ones only where the
 * peer may open a new connection to the phone, on a connection to be made; expired ones do not; who moved where is written within a second, a refresh within a minute; a file that
 * cannot be read is set aside, never overwritten, and the peer starts with none.
 */
const root = mkdtempSync(path.join(tmpdir(), 'p2psip-bindings-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

function peer(dir: string, clock = new VirtualClock()) {
  const location = new LocationService(() => clock.wallTime());
  const saved = new SavedBindings(dir, location, clock, silentLogger);
  return { clock, location, saved, restored: saved.restore((aor) => !aor.startsWith('removed@')) };
}

const udp = (clock: VirtualClock, contact: string, seconds: number, extra: Partial<Binding> = {}): Binding => ({
  contact,
  expiresAt: clock.wallTime() + seconds * 1000,
  callId: `${contact}-call`,
  cseq: 7,
  q: 0.5,
  instance: '<urn:uuid:00000000-0000-0000-0000-000000000001>',
  params: new Map<string, string | null>([['expires', '600'], ['ob', null]]),
  flow: { transport: 'UDP', remote: { host: '192.168.1.20', port: 5062 } },
  ...extra,
});

test('UDP bindings survive a restart as they were registered; TCP ones only where the peer may connect to the phone again; expired ones do not', () => {
  const dir = path.join(root, `p${dirs++}`);
  const first = peer(dir);
  assert.equal(first.restored, 0, 'a first start has nothing to restore');
  const alice = udp(first.clock, 'sip:alice@192.168.1.20:5062', 600);
  const overTcp = (contact: string, host: string, port: number, connectionId: number, extra: Partial<Binding> = {}) => udp(first.clock, contact, 600, { flow: { transport: 'TCP', remote: { host, port }, connectionId }, ...extra });
  // An ATA's two lines over one connection, each listening on its own port; a desk phone over another.
  const line1 = overTcp('sip:alice@192.168.1.21:5062;transport=tcp', '192.168.1.21', 40000, 3);
  const line2 = overTcp('sip:carol@192.168.1.21:5064;transport=tcp', '192.168.1.21', 40000, 3);
  const desk = overTcp('sip:dave@192.168.1.22:5060;transport=tcp', '192.168.1.22', 40100, 4);
  // Not kept: outbound (reg-id: its flow or nothing), a Contact on another host, one without ;transport=tcp.
  const outbound = overTcp('sip:alice@192.168.1.23:5060;transport=tcp', '192.168.1.23', 40200, 5, { params: new Map([['reg-id', '1']]) });
  const elsewhere = overTcp('sip:alice@192.168.1.99:5060;transport=tcp', '192.168.1.24', 40300, 6);
  const noTransport = overTcp('sip:alice@192.168.1.25:5060', '192.168.1.25', 40400, 7);
  first.location.set('alice@smiths.example', [alice, line1, outbound, elsewhere, noTransport]);
  first.location.set('carol@smiths.example', [line2]);
  first.location.set('dave@smiths.example', [desk]);
  first.location.set('bob@smiths.example', [udp(first.clock, 'sip:bob@192.168.1.30:5060', 30)]);
  first.saved.close();

  const clock = new VirtualClock();
  clock.runUntil(first.clock.now() + 60_000); // a minute later: bob's binding has lapsed
  const second = peer(dir, clock);
  assert.equal(second.restored, 4);
  const [back, backLine1] = second.location.bindings('alice@smiths.example');
  assert.deepEqual({ ...back, expiresAt: 0 }, { ...alice, expiresAt: 0 });
  assert.equal(Math.floor(back.expiresAt / 1000), Math.floor(alice.expiresAt / 1000), 'its expiry, to the second');
  assert.equal(second.location.bindings('alice@smiths.example').length, 2, 'outbound, another host and no ;transport=tcp are not kept');
  const [backLine2] = second.location.bindings('carol@smiths.example');
  const [backDesk] = second.location.bindings('dave@smiths.example');
  assert.equal(backLine1.contact, line1.contact);
  assert.equal(backLine1.flow.transport, 'TCP');
  assert.deepEqual(backLine1.flow.remote, line1.flow.remote);
  assert.ok(backLine1.flow.connectionId! < 0, 'on a connection that does not exist (the first call connects)');
  assert.equal(backLine2.flow.connectionId, backLine1.flow.connectionId, 'the two lines still share one');
  assert.notEqual(backDesk.flow.connectionId, backLine1.flow.connectionId, 'the desk phone has its own');
  assert.deepEqual(second.location.bindings('bob@smiths.example'), []);
});

test('a new phone is written within a second; a refresh that only moves an expiry, within a minute; nothing after close', () => {
  const dir = path.join(root, `p${dirs++}`);
  const { clock, location, saved } = peer(dir);
  const file = path.join(dir, 'sip-bindings.cbor');
  location.set('alice@smiths.example', [udp(clock, 'sip:alice@192.168.1.20:5062', 600)]);
  clock.runUntil(clock.now() + 999);
  assert.equal(existsSync(file), false);
  clock.runUntil(clock.now() + 1);
  const written = readFileSync(file);
  location.set('alice@smiths.example', [udp(clock, 'sip:alice@192.168.1.20:5062', 900)]); // a refresh
  clock.runUntil(clock.now() + 59_000);
  assert.deepEqual(readFileSync(file), written, 'not yet');
  clock.runUntil(clock.now() + 1_000);
  assert.notDeepEqual(readFileSync(file), written, 'written with the new expiry');
  saved.close();
  const size = statSync(file).size;
  location.set('alice@smiths.example', []);
  clock.runUntil(clock.now() + 120_000);
  assert.equal(statSync(file).size, size, 'a stopping peer writes nothing more');
});

test('a file that cannot be read is set aside and the peer starts with no bindings, not a crash', () => {
  const dir = path.join(root, `p${dirs++}`);
  const first = peer(dir);
  first.location.set('alice@smiths.example', [udp(first.clock, 'sip:alice@192.168.1.20:5062', 600)]);
  first.saved.close();
  const file = path.join(dir, 'sip-bindings.cbor');
  const damaged = readFileSync(file).subarray(0, 20);
  writeFileSync(file, damaged);
  const second = peer(dir);
  assert.equal(second.restored, 0);
  assert.deepEqual(readFileSync(`${file}.unreadable`), damaged, 'kept for whoever wants to look');
  writeFileSync(file, new Uint8Array([0x82, 0x02, 0x80])); // a version this peer does not know
  assert.equal(peer(dir).restored, 0);
});

test('a binding too large to read back is not written (the others are), and a user removed while the peer was down does not come back', () => {
  const dir = path.join(root, `p${dirs++}`);
  const first = peer(dir);
  const huge = udp(first.clock, `sip:alice@192.168.1.20:5062;x=${'y'.repeat(3000)}`, 600);
  first.location.set('alice@smiths.example', [huge, udp(first.clock, 'sip:alice@192.168.1.21:5062', 600)]);
  first.location.set('removed@smiths.example', [udp(first.clock, 'sip:removed@192.168.1.40:5060', 600)]);
  first.saved.close();
  const second = peer(dir);
  assert.deepEqual(second.location.bindings('alice@smiths.example').map((b) => b.contact), ['sip:alice@192.168.1.21:5062'], 'the other phone survives');
  assert.deepEqual(second.location.bindings('removed@smiths.example'), [], 'not a user any more');
  assert.equal(second.restored, 1);
});
