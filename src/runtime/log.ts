/**
 * Structured, quiet-by-default logging: one line per event, level and component first.
 * P2PSIP_LOG=component:level[,component:level] or --verbose opens it up.
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
const LEVELS: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export interface Logger {
  error(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  debug(event: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

export type LogSink = (line: string) => void;

export class LogPolicy {
  constructor(
    private readonly defaultLevel: LogLevel = 'warn',
    private readonly perComponent: Map<string, LogLevel> = new Map(),
  ) {}

  /** Parses P2PSIP_LOG, e.g. "overlay:debug,link:info" or "debug". */
  static parse(spec: string | undefined, defaultLevel: LogLevel = 'warn'): LogPolicy {
    const per = new Map<string, LogLevel>();
    let base = defaultLevel;
    for (const part of (spec ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
      const [component, level] = part.includes(':') ? part.split(':') : ['', part];
      if (!(level in LEVELS)) continue;
      if (component) per.set(component, level as LogLevel);
      else base = level as LogLevel;
    }
    return new LogPolicy(base, per);
  }

  /** The level set for the component itself or, failing that, its nearest dotted parent ("p2psip.nat" covers "p2psip.nat.relay"). */
  allows(component: string, level: LogLevel): boolean {
    let limit = this.perComponent.get(component);
    for (let name = component; limit === undefined && name.includes('.'); ) {
      name = name.slice(0, name.lastIndexOf('.'));
      limit = this.perComponent.get(name);
    }
    return LEVELS[level] <= LEVELS[limit ?? this.defaultLevel];
  }
}

export function createLogger(component: string, policy: LogPolicy, sink: LogSink, now: () => number): Logger {
  const emit = (level: LogLevel, event: string, fields?: Record<string, unknown>): void => {
    if (!policy.allows(component, level)) return;
    const parts = [new Date(now()).toISOString(), level.toUpperCase(), component, event];
    if (fields) {
      for (const [key, value] of Object.entries(fields)) parts.push(`${key}=${formatField(value)}`);
    }
    sink(parts.join(' '));
  };
  return {
    error: (e, f) => emit('error', e, f),
    warn: (e, f) => emit('warn', e, f),
    info: (e, f) => emit('info', e, f),
    debug: (e, f) => emit('debug', e, f),
    child: (name) => createLogger(`${component}.${name}`, policy, sink, now),
  };
}

function formatField(value: unknown): string {
  // JSON quoting escapes control characters, so a peer's words (a SIP user name, say) cannot
  // drive the operator's terminal or forge a line of their own.
  if (typeof value === 'string') return /[\s\p{C}]/u.test(value) ? JSON.stringify(value).replace(/\p{C}/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : value;
  if (typeof value === 'bigint') return value.toString(16);
  if (value instanceof Error) return JSON.stringify(`${value.name}: ${value.message}`);
  return JSON.stringify(value);
}

/** A logger that drops everything: the simulator's default at thousands of nodes. */
export const silentLogger: Logger = {
  error() {},
  warn() {},
  info() {},
  debug() {},
  child() {
    return silentLogger;
  },
};
