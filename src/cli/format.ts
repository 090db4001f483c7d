/** Human-readable renderings of status and route answers. */

interface Neighbor {
  id: string;
  address: string;
  k?: number;
}

/** `status` as an operator reads it: who this peer is, its ring, then SIP, storage, NAT and memory. */
export function formatStatus(s: Record<string, unknown>): string {
  const lines: string[] = [];
  if (s.warning) lines.push(`WARNING: ${s.warning}`);
  lines.push(`node-id    ${s.nodeId}`);
  lines.push(`overlay    ${s.overlay} (${s.mode} mode)`);
  const e = s.enrollment as { user: string; issuer: string; certificateExpires: string; configSequence: number; authority: string | null; revoked: number } | undefined;
  if (e) {
    lines.push(`user       ${e.user}, certificate by ${e.issuer} valid until ${e.certificateExpires}`);
    lines.push(`config     sequence ${e.configSequence}, ${e.revoked} revoked${e.authority ? `; this peer is the enrollment authority for ${e.authority}` : ''}`);
  }
  lines.push(`address    ${s.address}`);
  lines.push(`state      ${s.state === 'revoked' ? 'REVOKED: the authority revoked this device; it is cut off from the overlay' : s.state}, up ${s.uptimeSeconds} s`);
  const list = (title: string, items: Neighbor[]): void => {
    lines.push(`${title} (${items.length})`);
    for (const n of items) lines.push(`  ${n.id}  ${n.address}`);
  };
  list('successors', s.successors as Neighbor[]);
  list('predecessors', s.predecessors as Neighbor[]);
  lines.push(...formatFingers(s.fingers as Neighbor[]));
  const sip = s.sip as { server: string; realm: string; auth: string; invites: string; bindings: number; users: number; registrar?: { authFailures: number; lastAuthFailure: { user: string; reason: string; secondsAgo: number } | null } } | undefined;
  lines.push(sip ? `sip        server ${sip.server}, realm ${sip.realm}, ${sip.auth}; ${sip.bindings} phone(s) registered, for ${sip.users} user(s); calls ${sip.invites}` : 'sip        off');
  // A phone that will not register: a wrong password, or a name this home does not know.
  const failed = sip?.registrar?.lastAuthFailure;
  if (failed) lines.push(`           ${sip!.registrar!.authFailures} login(s) refused; the last for ${failed.user} (${failed.reason}), ${failed.secondsAgo} s ago`);
  const storage = s.storage as { resources: number; entries: number; bytes: number; maxEntries: number; backend?: { name: string } } | undefined;
  if (storage) lines.push(`storage    ${storage.entries} of at most ${storage.maxEntries} entries in ${storage.resources} resource(s), ${storage.bytes} bytes (${storage.backend?.name ?? 'memory'} backend)`);
  const nat = s.nat as { reflexive: { server: string; mapped: string }[]; behavior: { mapping?: string; filtering?: string } | string | null; relay: { state: string; relayed: string | null }; mapping?: { state?: string; external?: string | null } } | undefined;
  if (nat) {
    const behavior = typeof nat.behavior === 'string' ? nat.behavior : nat.behavior ? `${nat.behavior.mapping ?? '?'} mapping, ${nat.behavior.filtering ?? '?'} filtering` : 'not measured yet';
    // Each STUN server's answer: one address when the NAT maps the same for all (or there is none).
    const mapped = [...new Set(nat.reflexive.map((r) => r.mapped))];
    lines.push(`nat        public ${mapped.length ? mapped.join(', ') : 'address not learned yet'}; ${behavior}; relay ${nat.relay.state}${nat.relay.relayed ? ` at ${nat.relay.relayed}` : ''}`);
  }
  const memory = s.memory as { rssMB: number; heapUsedMB: number } | undefined;
  if (memory) lines.push(`memory     ${memory.rssMB} MB resident, ${memory.heapUsedMB} MB heap in use`);
  for (const group of ['counters', 'router', 'transport']) {
    const counters = s[group] as Record<string, number>;
    lines.push(`${group}: ${Object.entries(counters).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  }
  return lines.join('\n');
}

/** Fingers point at few distinct peers in a small ring: one line per peer, with the k it covers. */
function formatFingers(fingers: Neighbor[]): string[] {
  const runs: { from: number; to: number; n: Neighbor }[] = [];
  for (const n of fingers) {
    const last = runs.at(-1);
    if (last && last.n.id === n.id) last.to = n.k ?? last.to;
    else runs.push({ from: n.k ?? 0, to: n.k ?? 0, n });
  }
  return [`fingers (${fingers.length} to ${new Set(fingers.map((f) => f.id)).size} peer(s))`, ...runs.map((r) => `  k=${(r.from === r.to ? `${r.from}` : `${r.from}-${r.to}`).padEnd(7)}${r.n.id}  ${r.n.address}`)];
}

export function formatRoute(t: Record<string, unknown>): string {
  const path = t.path as { id: string; address: string }[];
  const lines = [`route to ${t.name} (resource-id ${t.resourceId}), ${t.hops} hop(s):`];
  path.forEach((hop, i) => lines.push(`  ${i}  ${hop.id}  ${hop.address}${i === path.length - 1 ? '  (responsible)' : ''}`));
  const ping = t.ping as Record<string, unknown>;
  lines.push(ping.error ? `ping: ${ping.error}` : `ping: answered by ${ping.responder} in ${ping.rttMs} ms over ${ping.hops} hop(s)`);
  return lines.join('\n');
}
