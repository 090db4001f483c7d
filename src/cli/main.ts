import { callPeer } from '../node/control-client.js';
import { PeerDaemon } from '../node/peer-daemon.js';
import { createLogger, type Logger, LogPolicy } from '../runtime/log.js';
import { DataDirLock } from '../node/data-dir-lock.js';
import { P2psipError, UsageError } from '../runtime/errors.js';
import { simulate } from '../sim/simulation.js';
import { LINK_ATTACKS, type RogueAttack } from '../sim/rogue-link-attacks.js';
import { parseAddress } from '../wire/address.js';
import { checkKnownFlags, hostFlag, numberFlag, parseArgs, type ParsedArgs, requiredFlag, stringFlag } from './args.js';
import { formatRoute, formatStatus } from './format.js';
import { enrollFromArgs, initCommand, inviteCommand, revokeCommand } from './enrollment-commands.js';
import { userCommand } from './user-commands.js';
import { DIGEST_ALGORITHMS, type DigestAlgorithm } from '../usages/sip/auth/digest.js';
import { parseSipUri } from '../usages/sip/message/uri.js';
import { DEFAULT_BACKEND } from '../storage/backends/registry.js';
import { DEFAULT_STORAGE_LIMITS } from '../storage/resource-store.js';
import { getHeapStatistics } from 'node:v8';
import { MAPPING_PROTOCOLS, type MappingProtocol } from '../nat/port-mapping/port-mapper.js';

/*
 * The p2psip command: a thin shell over node/ and sim/. Each command parses its flags, calls one
 * function, and prints human text or, with --json, one JSON object. Exit codes: 0 ok, 1 failure,
 * 2 usage.
 */
const USAGE = `usage: p2psip <command> [options]

  init     --data DIR --overlay NAME [--domain D] [--user NAME] [--cert-lifetime SECONDS] [--json]
  invite   --data DIR [--user NAME] [--household N] [--client] [--expires SECONDS] [--json]
  join     TOKEN --data DIR [--no-start] [start options]
  revoke   USER --data DIR [--json]   |   revoke --fingerprint FP --data DIR [--json]
  start    --data DIR [--overlay-port P] [--bootstrap HOST:PORT[,HOST:PORT]] [--open]
           [--bind HOST] [--advertise HOST] [--overlay NAME] [--storage file|memory]
           [--max-storage-bytes N] [--max-resource-bytes N] [--max-storage-entries N] [--sip-port P|off] [--sip-auth on|off]
           [--sip-digest SHA-256,MD5] [--sip-timer-c SECONDS] [--sip-direct on|off] [--relay auto|off] [--relay-ports LOW-HIGH] [--port-mapping on|off|pcp,nat-pmp,upnp-igd] [--verbose]
           [--media-anchor auto|always|off] [--media-ports LOW-HIGH] [--media-timeout SECONDS] [--max-calls N]
  lookup   NAME|NAME@DOMAIN|sip:NAME@DOMAIN --data DIR [--json]
  user     add NAME [--password P] [--replace] | list [--all] | remove NAME   --data DIR [--json]
  status   --data DIR [--json]
  calls    --data DIR [--json]
  route    NAME --data DIR [--json]
  attach   NODE-ID --data DIR [--json]
  store    KIND NAME VALUE --data DIR [--index N] [--key K] [--lifetime SECONDS] [--json]
  fetch    KIND NAME --data DIR [--json]
  simulate --nodes N --seed S [--churn PER_HOUR] [--lookups K] [--fail FRACTION]
           [--duration SECONDS] [--loss RATE] [--crypto simulated|ed25519] [--values V]
           [--replicas R] [--fail-adjacent K] [--fail-sequential FRACTION] [--fail-gap SECONDS]
           [--rogue FRACTION] [--rogue-attacks drop,counter-overflow,hello-relay,hello-replay,junk-hellos,unknown-session]
           [--links sealed|plain] [--json]
`;

const START_FLAGS = ['data', 'overlay-port', 'bootstrap', 'open', 'bind', 'advertise', 'overlay', 'verbose', 'storage', 'max-storage-bytes', 'max-resource-bytes', 'sip-port', 'sip-auth', 'sip-digest', 'sip-timer-c', 'sip-direct', 'relay', 'port-mapping', 'max-storage-entries', 'media-anchor', 'media-ports', 'media-timeout', 'max-calls', 'relay-ports'];
const DEFAULT_SIP_PORT = 5060;
const DEFAULT_OVERLAY = 'open.p2psip.lab';
const DEFAULT_OVERLAY_PORT = 6084;

type Print = (text: string) => void;

export async function main(argv: readonly string[], out: Print = (t) => process.stdout.write(`${t}\n`)): Promise<number> {
  const [command, ...rest] = argv;
  // `p2psip start --help` (any command's): the usage, not "--help needs a value".
  if (command !== undefined && (rest.includes('--help') || rest.includes('-h'))) {
    out(USAGE);
    return 0;
  }
  try {
    switch (command) {
      case 'start':
        return await startCommand(parseArgs(rest, ['open', 'verbose']));
      case 'init':
        return initCommand(parseArgs(rest, ['json']), out);
      case 'invite':
        return await inviteCommand(parseArgs(rest, ['json', 'client']), out);
      case 'lookup':
        return await lookupCommand(parseArgs(rest, ['json']), out);
      case 'user':
        return await userCommand(parseArgs(rest, ['json', 'replace', 'all']), out);
      case 'revoke':
        return await revokeCommand(parseArgs(rest, ['json']), out);
      case 'join': {
        const args = parseArgs(rest, ['verbose', 'no-start']);
        checkKnownFlags(args, [...START_FLAGS, 'no-start'], 1);
        // The directory is the peer's from the start: a `user add` typed meanwhile waits for the identity.
        const lock = await DataDirLock.take(requiredFlag(args, 'data'), peerLog(args).child('control'));
        try {
          await enrollFromArgs(args, out);
        } catch (error) {
          await lock.release();
          throw error;
        }
        // A packaged device enrolls once, then its service manager runs the peer.
        if (args.flags.has('no-start')) {
          await lock.release();
          return 0;
        }
        return await startCommand({ ...args, positional: [] }, lock); // the token was join's
      }
      case 'status':
        return await statusCommand(parseArgs(rest, ['json']), out);
      case 'route':
        return await routeCommand(parseArgs(rest, ['json']), out);
      case 'attach':
        return await attachCli(parseArgs(rest, ['json']), out);
      case 'calls':
        return await callsCli(parseArgs(rest, ['json']), out);
      case 'store':
        return await storeCli(parseArgs(rest, ['json']), out);
      case 'fetch':
        return await fetchCli(parseArgs(rest, ['json']), out);
      case 'simulate':
        return simulateCommand(parseArgs(rest, ['json']), out);
      case undefined:
      case 'help':
      case '--help':
        out(USAGE);
        return command ? 0 : 2;
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      // One line that says what was wrong; the whole usage only when asked for.
      process.stderr.write(`p2psip: ${error.message}\n(p2psip help lists every command and option)\n`);
      return 2;
    }
    const e = error as Error;
    // Messages of our own errors are written for people; class names would only be noise there.
    process.stderr.write(`p2psip: ${e instanceof P2psipError ? e.message : `internal error (${e.name}): ${e.message}`}\n`);
    return 1;
  }
}

/** A running peer's log: warnings and errors on stderr (--verbose: info too; P2PSIP_LOG per component). */
function peerLog(args: ParsedArgs): Logger {
  const policy = LogPolicy.parse(process.env.P2PSIP_LOG, args.flags.has('verbose') ? 'info' : 'warn');
  return createLogger('p2psip', policy, (line) => process.stderr.write(`${line}\n`), () => Date.now());
}

async function startCommand(args: ParsedArgs, lock?: DataDirLock): Promise<number> {
  checkKnownFlags(args, START_FLAGS);
  const log = peerLog(args);
  const bootstrap = (stringFlag(args, 'bootstrap') ?? '')
    .split(',')
    .filter(Boolean)
    .map((a) => {
      try {
        return parseAddress(a, DEFAULT_OVERLAY_PORT);
      } catch (error) {
        throw new UsageError(`--bootstrap: ${(error as Error).message}`);
      }
    });
  const daemon = await PeerDaemon.start({
    dataDir: requiredFlag(args, 'data'),
    overlayPort: numberFlag(args, 'overlay-port', DEFAULT_OVERLAY_PORT, 0, 65535),
    bindHost: hostFlag(args, 'bind', '0.0.0.0')!,
    advertiseHost: hostFlag(args, 'advertise'),
    bootstrap,
    open: args.flags.has('open'),
    overlayName: stringFlag(args, 'overlay', DEFAULT_OVERLAY)!,
    storage: stringFlag(args, 'storage', DEFAULT_BACKEND)!,
    storageLimits: {
      maxBytesTotal: numberFlag(args, 'max-storage-bytes', DEFAULT_STORAGE_LIMITS.maxBytesTotal, 0, Number.MAX_SAFE_INTEGER),
      maxBytesPerResource: numberFlag(args, 'max-resource-bytes', DEFAULT_STORAGE_LIMITS.maxBytesPerResource, 0, Number.MAX_SAFE_INTEGER),
      maxEntries: numberFlag(args, 'max-storage-entries', entriesForHeap(getHeapStatistics().heap_size_limit), 0, Number.MAX_SAFE_INTEGER),
    },
    sipPort: sipPortFlag(args),
    sipAuth: onOffFlag(args, 'sip-auth', true),
    sipDigest: digestFlag(args),
    ...(args.flags.has('sip-timer-c') ? { sipTimerCSeconds: numberFlag(args, 'sip-timer-c', 181, 5, 3600) } : {}),
    sipDirect: onOffFlag(args, 'sip-direct', true),
    relay: relayFlag(args),
    portMapping: portMappingFlag(args),
    mediaAnchor: mediaAnchorFlag(args),
    ...(args.flags.has('media-ports') ? { mediaPorts: mediaPortsFlag(args) } : {}),
    ...(args.flags.has('relay-ports') ? { relayPorts: relayPortsFlag(args) } : {}),
    ...(args.flags.has('media-timeout') ? { mediaTimeoutSeconds: numberFlag(args, 'media-timeout', 60, 5, 86_400) } : {}),
    ...(args.flags.has('max-calls') ? { maxCalls: numberFlag(args, 'max-calls', 32, 1, 10_000) } : {}),
    log,
  }, lock);
  const status = daemon.status();
  process.stdout.write(`p2psip peer ${status.nodeId} on ${status.address} (overlay ${status.overlay})\n`);
  const sip = status.sip as { server: string; realm: string; auth: string; invites: string } | undefined;
  if (sip) {
    process.stdout.write(`SIP: phones register as sip:NAME@${sip.realm} to server ${sip.server} (UDP or TCP), ${sip.auth}; calls ${sip.invites}\n`);
    process.stdout.write(`  add a person: p2psip user add NAME --data ${requiredFlag(args, 'data')}   (phone settings: docs/phones.md)\n`);
  }
  if (status.warning) process.stdout.write(`WARNING: ${status.warning}\n`);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      // RFC 6940 s10.8: leave gracefully so neighbours need not wait for failure detection.
      daemon.stop().then(resolve, resolve);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
}

function sipPortFlag(args: ParsedArgs): number | undefined {
  if (stringFlag(args, 'sip-port') === 'off') return undefined;
  return numberFlag(args, 'sip-port', DEFAULT_SIP_PORT, 0, 65535);
}

function digestFlag(args: ParsedArgs): DigestAlgorithm[] | undefined {
  const value = stringFlag(args, 'sip-digest');
  if (value === undefined) return undefined;
  const list = value.split(',').map((a) => a.trim().toUpperCase());
  if (list.length === 0 || list.some((a) => !DIGEST_ALGORITHMS.includes(a as DigestAlgorithm)) || new Set(list).size !== list.length) {
    throw new UsageError('--sip-digest lists SHA-256 and/or MD5, most preferred first');
  }
  return list as DigestAlgorithm[];
}

function onOffFlag(args: ParsedArgs, name: string, fallback: boolean): boolean {
  const value = stringFlag(args, name);
  if (value === undefined) return fallback;
  if (value !== 'on' && value !== 'off') throw new UsageError(`--${name} is on or off`);
  return value === 'on';
}

async function lookupCommand(args: ParsedArgs, out: Print): Promise<number> {
  checkKnownFlags(args, ['data', 'json'], 1);
  const aor = args.positional[0];
  if (!aor || !isUserName(aor)) throw new UsageError('lookup needs a user: NAME (of this home\'s domain), NAME@DOMAIN or sip:NAME@DOMAIN');
  const answer = (await callPeer(requiredFlag(args, 'data'), { op: 'lookup', aor })) as {
    aor: string;
    registrations: { node: string; signer: string; destinations: string[]; expiresInSeconds: number }[];
    local: { contact: string; transport: string; source: string; expiresInSeconds: number }[];
  };
  if (args.flags.has('json')) out(JSON.stringify(answer));
  else {
    out(`sip:${answer.aor}: ${answer.registrations.length ? `registered at ${answer.registrations.length} home peer(s)` : 'not registered in the overlay'}`);
    for (const r of answer.registrations) out(`  home peer ${r.destinations.join(', ')} (signed by ${r.signer}, ${r.expiresInSeconds} s left)`);
    for (const b of answer.local) out(`  phone here: ${b.contact} via ${b.transport} from ${b.source} (${b.expiresInSeconds} s left)`);
  }
  return answer.registrations.length > 0 || answer.local.length > 0 ? 0 : 1;
}

/** `bob` (the peer adds its own domain), `bob@smiths.example` or `sip:bob@smiths.example`. */
function isUserName(text: string): boolean {
  if (/\s/.test(text)) return false;
  const uri = text.includes(':') ? text : `sip:${text.includes('@') ? text : `${text}@domain.invalid`}`;
  try {
    return parseSipUri(uri).user !== undefined;
  } catch {
    return false;
  }
}

async function statusCommand(args: ParsedArgs, out: Print): Promise<number> {
  checkKnownFlags(args, ['data', 'json']);
  const status = (await callPeer(requiredFlag(args, 'data'), { op: 'status' })) as Record<string, unknown>;
  out(args.flags.has('json') ? JSON.stringify(status) : formatStatus(status));
  return 0;
}

async function routeCommand(args: ParsedArgs, out: Print): Promise<number> {
  checkKnownFlags(args, ['data', 'json'], 1);
  const name = args.positional[0];
  if (!name) throw new UsageError('route needs a NAME');
  const trace = (await callPeer(requiredFlag(args, 'data'), { op: 'route', name })) as Record<string, unknown>;
  out(args.flags.has('json') ? JSON.stringify(trace) : formatRoute(trace));
  return 0;
}

/** `on` (PCP, NAT-PMP, UPnP IGD in that order), `off`, or a comma-separated list in the order to try. */
function portMappingFlag(args: ParsedArgs): readonly MappingProtocol[] {
  const value = stringFlag(args, 'port-mapping', 'on')!;
  if (value === 'on') return MAPPING_PROTOCOLS;
  if (value === 'off') return [];
  const list = value.split(',');
  const unknown = list.filter((p) => !MAPPING_PROTOCOLS.includes(p as MappingProtocol));
  if (unknown.length) throw new UsageError(`--port-mapping takes on, off or a list of ${MAPPING_PROTOCOLS.join(', ')}`);
  return list as MappingProtocol[];
}

/**
 * The default entry quota for the V8 heap this process got. Measured with heap snapshots
 * (bench/footprint.ts): an idle peer keeps about 6 MB live, and each stored value about 0.9 KB
 * more. The quota keeps the live heap within half the limit, leaving V8 the other half for the
 * garbage of a burst: the service wrappers' 24 MB old space (27 MB in all) gives about 8,000
 * values; a desktop's default heap lifts the cap far away.
 */
const IDLE_HEAP_MB = 6;
const ENTRIES_PER_HEAP_MB = 1100;

function entriesForHeap(heapLimitBytes: number): number {
  const heapMb = heapLimitBytes / (1024 * 1024);
  return Math.max(500, Math.floor((heapMb / 2 - IDLE_HEAP_MB) * ENTRIES_PER_HEAP_MB));
}

function relayFlag(args: ParsedArgs): 'auto' | 'off' {
  const value = stringFlag(args, 'relay', 'auto');
  if (value !== 'auto' && value !== 'off') throw new UsageError('--relay takes auto or off');
  return value;
}

function mediaAnchorFlag(args: ParsedArgs): 'auto' | 'always' | 'off' {
  const value = stringFlag(args, 'media-anchor', 'auto');
  if (value !== 'auto' && value !== 'always' && value !== 'off') throw new UsageError('--media-anchor takes auto, always or off');
  return value;
}

function mediaPortsFlag(args: ParsedArgs): { low: number; high: number } {
  return portRangeFlag(args, 'media-ports', 4, ', at least 4 ports (RTP on even ports, RTCP above)');
}

function relayPortsFlag(args: ParsedArgs): { low: number; high: number } {
  return portRangeFlag(args, 'relay-ports', 1, '');
}

/** A LOW-HIGH UDP port range flag within 1024-65535, of at least `minPorts` ports. */
function portRangeFlag(args: ParsedArgs, name: string, minPorts: number, hint: string): { low: number; high: number } {
  const match = /^(\d{4,5})-(\d{4,5})$/.exec(stringFlag(args, name) ?? '');
  const [low, high] = match ? [Number(match[1]), Number(match[2])] : [0, 0];
  if (!match || low < 1024 || high > 65535 || high - low + 1 < minPorts) throw new UsageError(`--${name} takes LOW-HIGH within 1024-65535${hint}`);
  return { low, high };
}

/** `p2psip calls`: the calls whose media this peer anchors now. */
async function callsCli(args: ParsedArgs, out: Print): Promise<number> {
  checkKnownFlags(args, ['data', 'json']);
  const calls = (await callPeer(requiredFlag(args, 'data'), { op: 'calls' })) as Record<string, unknown>[];
  if (args.flags.has('json')) {
    out(JSON.stringify(calls));
    return 0;
  }
  if (calls.length === 0) out('no calls with anchored media');
  for (const c of calls) {
    const quality = c.lossPercent === null ? 'no RTCP reports yet' : `loss ${c.lossPercent}%, jitter ${c.jitterMs} ms`;
    out(`${c.caller} -> ${c.callee}  ${c.path}  ${(c.codecs as string[]).join(',')}  sent ${c.packetsSent} received ${c.packetsReceived} packets  ${quality}  ${c.seconds} s`);
  }
  return 0;
}

async function attachCli(args: ParsedArgs, out: Print): Promise<number> {
  checkKnownFlags(args, ['data', 'json'], 1);
  const nodeId = args.positional[0];
  if (!nodeId || !/^[0-9a-f]{32}$/i.test(nodeId)) throw new UsageError('attach needs a NODE-ID (32 hex digits, as status shows)');
  const report = (await callPeer(requiredFlag(args, 'data'), { op: 'attach', nodeId })) as Record<string, unknown>;
  out(args.flags.has('json') ? JSON.stringify(report) : `attached to ${report.nodeId}: ${report.path} via ${report.address} (${report.remoteType}) in ${report.setupMs} ms`);
  return 0;
}

async function storeCli(args: ParsedArgs, out: Print): Promise<number> {
  checkKnownFlags(args, ['data', 'json', 'index', 'key', 'lifetime'], 3);
  const [kind, name, value] = args.positional;
  if (!kind || !name || value === undefined) throw new UsageError('store needs KIND NAME VALUE');
  const result = (await callPeer(requiredFlag(args, 'data'), {
    op: 'store',
    kind,
    name,
    value,
    index: args.flags.has('index') ? numberFlag(args, 'index', 0, 0, 0xffffffff) : undefined,
    key: stringFlag(args, 'key'),
    lifetime: numberFlag(args, 'lifetime', 3600, 1, 0xffffffff),
  })) as Record<string, unknown>;
  out(args.flags.has('json') ? JSON.stringify(result) : `stored ${result.kind} at ${result.resourceId} (key ${result.key}, generation ${result.generation}, replicas ${(result.replicas as string[]).length})`);
  return 0;
}

async function fetchCli(args: ParsedArgs, out: Print): Promise<number> {
  checkKnownFlags(args, ['data', 'json'], 2);
  const [kind, name] = args.positional;
  if (!kind || !name) throw new UsageError('fetch needs KIND NAME');
  const result = (await callPeer(requiredFlag(args, 'data'), { op: 'fetch', kind, name })) as { values: { key: unknown; value: string; encoding: string; signer: string; storedAt: string }[] } & Record<string, unknown>;
  if (args.flags.has('json')) out(JSON.stringify(result));
  else {
    out(`${result.kind} at ${result.resourceId}: ${result.values.length} value(s), generation ${result.generation}, from ${result.responder}`);
    for (const v of result.values) out(`  ${v.key === null ? '' : `[${v.key}] `}${v.encoding === 'hex' ? `(hex) ${v.value}` : v.value}  (by ${v.signer}, ${v.storedAt})`);
  }
  return result.values.length > 0 ? 0 : 1;
}

function simulateCommand(args: ParsedArgs, out: Print): number {
  checkKnownFlags(args, ['nodes', 'seed', 'churn', 'lookups', 'fail', 'duration', 'loss', 'crypto', 'json', 'values', 'replicas', 'fail-adjacent', 'fail-sequential', 'fail-gap', 'rogue', 'rogue-attacks', 'links']);
  const crypto = stringFlag(args, 'crypto', 'simulated');
  if (crypto !== 'simulated' && crypto !== 'ed25519') throw new UsageError('--crypto is simulated or ed25519');
  const links = stringFlag(args, 'links');
  if (links !== undefined && links !== 'sealed' && links !== 'plain') throw new UsageError('--links is sealed or plain');
  const report = simulate({
    onProgress: (step) => process.stderr.write(`simulate: ${step}\n`),
    nodes: numberFlag(args, 'nodes', 100, 1, 100_000),
    seed: numberFlag(args, 'seed', 1, 0, 0xffffffff),
    churnPerHour: numberFlag(args, 'churn', 0, 0, 3600),
    lookups: numberFlag(args, 'lookups', 0, 0, 10_000_000),
    failFraction: numberFlag(args, 'fail', 0, 0, 0.99),
    durationSeconds: args.flags.has('duration') ? numberFlag(args, 'duration', 300, 0, 86_400) : undefined,
    lossRate: numberFlag(args, 'loss', 0, 0, 0.5),
    crypto,
    links,
    values: numberFlag(args, 'values', 0, 0, 1_000_000),
    replicas: numberFlag(args, 'replicas', 3, 1, 16),
    failAdjacent: numberFlag(args, 'fail-adjacent', 0, 0, 1000),
    failSequential: numberFlag(args, 'fail-sequential', 0, 0, 0.9),
    failGapSeconds: numberFlag(args, 'fail-gap', 30, 1, 3600),
    rogueFraction: numberFlag(args, 'rogue', 0, 0, 0.5),
    rogueAttacks: rogueAttacksFlag(args),
  });
  out(args.flags.has('json') ? JSON.stringify(report) : formatSimulation(report));
  return report.ringCorrect ? 0 : 1;
}

function rogueAttacksFlag(args: ParsedArgs): RogueAttack[] | undefined {
  const value = stringFlag(args, 'rogue-attacks');
  if (value === undefined) return undefined;
  const known: readonly string[] = ['drop', ...LINK_ATTACKS];
  const attacks = value.split(',').map((a) => a.trim());
  const unknown = attacks.filter((a) => !known.includes(a));
  if (unknown.length || attacks.length === 0) throw new UsageError(`--rogue-attacks takes a list of ${known.join(', ')}`);
  return attacks as RogueAttack[];
}

function formatSimulation(report: object): string {
  return Object.entries(report)
    .map(([k, v]) => `${k.padEnd(26)} ${v}`)
    .join('\n');
}
