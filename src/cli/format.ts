/** Human-readable renderings of status and route answers. */

interface Neighbor {
  id: string;
  address: string;
  k?: number;
}

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
  lines.push(`state      ${s.state}, up ${s.uptimeSeconds} s`);
  const list = (title: string, items: Neighbor[]): void => {
    lines.push(`${title} (${items.length})`);
    for (const n of items) lines.push(`  ${n.k !== undefined ? `k=${String(n.k).padEnd(3)}` : ''}${n.id}  ${n.address}`);
  };
  list('successors', s.successors as Neighbor[]);
  list('predecessors', s.predecessors as Neighbor[]);
  list('fingers', s.fingers as Neighbor[]);
  for (const group of ['counters', 'router', 'transport']) {
    const counters = s[group] as Record<string, number>;
    lines.push(`${group}: ${Object.entries(counters).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  }
  return lines.join('\n');
}

export function formatRoute(t: Record<string, unknown>): string {
  const path = t.path as { id: string; address: string }[];
  const lines = [`route to ${t.name} (resource-id ${t.resourceId}), ${t.hops} hop(s):`];
  path.forEach((hop, i) => lines.push(`  ${i}  ${hop.id}  ${hop.address}${i === path.length - 1 ? '  (responsible)' : ''}`));
  const ping = t.ping as Record<string, unknown>;
  lines.push(ping.error ? `ping: ${ping.error}` : `ping: answered by ${ping.responder} in ${ping.rttMs} ms over ${ping.hops} hop(s)`);
  return lines.join('\n');
}
