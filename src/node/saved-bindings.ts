import { existsSync, renameSync } from 'node:fs';
import path from 'node:path';
import type { Clock, TimerHandle } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import { reconnectAddress } from '../usages/sip/proxy/phone-reconnect.js';
import type { Binding, LocationService } from '../usages/sip/registrar/location.js';
import { readArray, readList, readText, readUint } from '../wire/schema.js';
import { readCborFile, writeCborFile } from './cbor-file.js';

/*
 * The home's phone registrations, kept on disk so that a restarted peer (a router's reboot, a
 * power cut, an upgrade) still knows where its phones are: without them, calls to the family get
 * 480 until each phone's next REGISTER, up to its whole refresh interval (Kamailio's usrloc keeps
 * them in a database for the same reason). RFC 6940's insertion then stores them in the overlay
 * again. A TCP phone's connection did not survive the restart: its binding is kept only where the
 * peer may open a new one to the phone (phone-reconnect.ts: it listens at its Contact, on the host
 * it registered from, without outbound), and comes back on a connection that does not exist yet,
 * one per old connection, so the first call connects. RFC 5626 s5.3 wants no binding whose flow
 * is gone, so an outbound phone's is not kept.
 *
 * A change of who is registered where is written within a second; a refresh that only pushes an
 * expiry out, within a minute (flash wears, and a phone refreshes long before its binding lapses).
 */
const FILE = 'sip-bindings.cbor';
const VERSION = 1;
const MAX_FILE_BYTES = 4 * 1024 * 1024;
const MAX_BINDINGS = 10_000;
const SOON_MS = 1_000;
const REFRESH_MS = 60_000;

/**
 * One binding on disk: [aor, contact, expires (Unix seconds), callId, cseq, q or -1, instance or "",
 * params, host, port] for UDP, with "TCP" added for TCP (a release that knew only UDP skips those).
 */
type SavedBinding = [string, string, number, string, number, number, string, [string, string | null][], string, number, ...'TCP'[]];

export class SavedBindings {
  private timer: TimerHandle | undefined;
  private dueAt = Infinity;
  /** Per AOR, who is registered where as last written (expiries aside). */
  private readonly written = new Map<string, string>();
  private closed = false;

  constructor(
    private readonly dataDir: string,
    private readonly location: LocationService,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  private get file(): string {
    return path.join(this.dataDir, FILE);
  }

  /**
   * Puts the saved bindings that have not expired, of AORs `isUser` still knows (one removed
   * while the peer was down stays gone), back into the location service (whose listeners publish
   * them), then saves every later change. Returns how many came back. A file that cannot be read
   * is set aside (never overwritten) and the peer starts with none; one binding that cannot be
   * read is skipped.
   */
  restore(isUser: (aor: string) => boolean): number {
    let restored = 0;
    try {
      const byAor = new Map<string, Binding[]>();
      const now = this.clock.wallTime();
      for (const binding of readBindings(readCborFile(this.file, MAX_FILE_BYTES))) {
        if (!binding || binding.binding.expiresAt <= now || !isUser(binding.aor)) continue;
        byAor.set(binding.aor, [...(byAor.get(binding.aor) ?? []), binding.binding]);
      }
      for (const [aor, bindings] of byAor) {
        this.written.set(aor, whoIsWhere(bindings));
        this.location.set(aor, bindings);
        restored += bindings.length;
      }
    } catch (error) {
      const aside = `${this.file}.unreadable`;
      if (existsSync(this.file)) renameSync(this.file, aside);
      this.log.warn('bindings-unreadable', { file: this.file, keptAs: aside, error: (error as Error).message });
    }
    this.location.onChange((aor, bindings) => this.changed(aor, bindings));
    return restored;
  }

  /** Writes what is pending now and stops saving (the peer is stopping: its bindings stay on disk). */
  close(): void {
    if (this.closed) return;
    this.clock.clearTimer(this.timer);
    if (this.dueAt < Infinity) this.write();
    this.closed = true;
  }

  private changed(aor: string, bindings: readonly Binding[]): void {
    if (this.closed) return;
    const moved = this.written.get(aor) !== whoIsWhere(bindings);
    this.schedule(moved ? SOON_MS : REFRESH_MS);
  }

  private schedule(delayMs: number): void {
    const at = this.clock.now() + delayMs;
    if (at >= this.dueAt) return;
    this.clock.clearTimer(this.timer);
    this.dueAt = at;
    this.timer = this.clock.setTimer(delayMs, () => this.write());
  }

  private write(): void {
    this.timer = undefined;
    this.dueAt = Infinity;
    const saved: SavedBinding[] = [];
    this.written.clear();
    for (const aor of this.location.aors()) {
      const bindings = this.location.bindings(aor);
      this.written.set(aor, whoIsWhere(bindings));
      for (const b of bindings.filter((binding) => binding.flow.transport === 'UDP' || reconnectAddress(binding) !== undefined)) {
        if (saved.length >= MAX_BINDINGS) break;
        const entry: SavedBinding = [aor, b.contact, Math.floor(b.expiresAt / 1000), b.callId, b.cseq, b.q ?? -1, b.instance ?? '', [...(b.params ?? new Map())], b.flow.remote.host, b.flow.remote.port];
        if (b.flow.transport === 'TCP') entry.push('TCP');
        if (withinLimits(entry)) saved.push(entry); // what could not be read back is not written
      }
    }
    try {
      writeCborFile(this.file, [VERSION, saved]);
    } catch (error) {
      this.log.warn('bindings-not-saved', { file: this.file, error: (error as Error).message });
    }
  }
}

/** Who is registered where, expiries aside: a change here is written soon. */
function whoIsWhere(bindings: readonly Binding[]): string {
  return bindings
    .map((b) => `${b.contact} ${b.flow.transport} ${b.flow.remote.host}:${b.flow.remote.port}`)
    .sort()
    .join('\n');
}

const LIMITS = { aor: 512, contact: 2048, callId: 512, instance: 256, params: 64, paramName: 128, paramValue: 1024, host: 64 } as const;

function withinLimits([aor, contact, , callId, , , instance, params, host]: SavedBinding): boolean {
  return (
    aor.length <= LIMITS.aor &&
    contact.length <= LIMITS.contact &&
    callId.length <= LIMITS.callId &&
    instance.length <= LIMITS.instance &&
    params.length <= LIMITS.params &&
    params.every(([name, value]) => name.length <= LIMITS.paramName && (value?.length ?? 0) <= LIMITS.paramValue) &&
    host.length <= LIMITS.host
  );
}

/** The saved bindings; undefined for one that cannot be read (skipped, the others kept). */
function readBindings(value: unknown): ({ aor: string; binding: Binding } | undefined)[] {
  if (value === undefined) return [];
  const [version, list] = readArray(value, '$', 2, 2);
  if (readUint(version, '$[0]') !== VERSION) throw new Error(`version ${String(version)} is not ${VERSION}`);
  // A TCP binding's connection is gone: each old one gets an id no live connection has (negative), so
  // the bindings that shared one still share it, and the first call to one of them connects anew.
  const closedConnections = new Map<string, number>();
  const closedConnection = (remote: { host: string; port: number }): number => {
    const key = `${remote.host} ${remote.port}`;
    if (!closedConnections.has(key)) closedConnections.set(key, -1 - closedConnections.size);
    return closedConnections.get(key)!;
  };
  return readList(list, '$[1]', MAX_BINDINGS, (item, at) => {
    try {
      return readBinding(item, at, closedConnection);
    } catch {
      return undefined;
    }
  });
}

function readBinding(item: unknown, at: string, closedConnection: (remote: { host: string; port: number }) => number): { aor: string; binding: Binding } {
  const [aor, contact, expiresAt, callId, cseq, q, instance, params, host, port, transport] = readArray(item, at, 10, 11);
  if (transport !== undefined && transport !== 'TCP') throw new Error(`${at}[10]: not a transport this release keeps`);
  const remote = { host: readText(host, `${at}[8]`, LIMITS.host), port: readUint(port, `${at}[9]`, 65535) };
  const qValue = typeof q === 'number' && q >= 0 && q <= 1 ? q : undefined;
  const instanceText = readText(instance, `${at}[6]`, LIMITS.instance);
  return {
    aor: readText(aor, `${at}[0]`, LIMITS.aor),
    binding: {
      contact: readText(contact, `${at}[1]`, LIMITS.contact),
      expiresAt: readUint(expiresAt, `${at}[2]`) * 1000,
      callId: readText(callId, `${at}[3]`, LIMITS.callId),
      cseq: readUint(cseq, `${at}[4]`),
      q: qValue,
      ...(instanceText ? { instance: instanceText } : {}),
      params: new Map(readList(params, `${at}[7]`, LIMITS.params, (pair, p) => {
        const [name, text] = readArray(pair, p, 2, 2);
        return [readText(name, `${p}[0]`, LIMITS.paramName), text === null ? null : readText(text, `${p}[1]`, LIMITS.paramValue)] as const;
      })),
      flow: transport === 'TCP' ? { transport: 'TCP', remote, connectionId: closedConnection(remote) } : { transport: 'UDP', remote },
    },
  };
}
