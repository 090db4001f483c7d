import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FLOW_PARAM, FlowTokens } from '../../../src/usages/sip/proxy/flow-tokens.js';

const tokens = new FlowTokens(new Uint8Array(32).fill(5));
const tcp = { transport: 'TCP' as const, connectionId: 7, remote: { host: '192.168.1.20', port: 50123 } };

test("a flow token names its flow and whether it is a phone of ours; a stranger's TCP mark cannot be turned into a phone's", () => {
  const phone = tokens.encode(tcp)!;
  const stranger = tokens.encode(tcp, false)!;
  assert.deepEqual(tokens.decode(phone), { flow: tcp, ours: true });
  assert.deepEqual(tokens.decode(stranger), { flow: tcp, ours: false });
  assert.equal(tokens.decode(stranger.replace(/^s~/, '')), undefined, "taking the stranger's prefix off breaks the MAC");
  assert.equal(tokens.decode(`s~${phone}`), undefined);
  const [marked] = tokens.markContacts(['<sip:alice@192.168.1.20:50123;transport=tcp>'], tcp, false)!;
  assert.match(marked, new RegExp(`;${FLOW_PARAM}=s~t~7~`));
});

test('a token whose MAC has as many characters as ours but other bytes (é for e) is refused, not thrown: Node throws on buffers of two lengths', () => {
  const phone = tokens.encode(tcp)!;
  const mac = phone.slice(phone.lastIndexOf('~') + 1);
  assert.equal(tokens.decode(`${phone.slice(0, phone.lastIndexOf('~') + 1)}${'é'.repeat(mac.length)}`), undefined);
});
