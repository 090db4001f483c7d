import { isIP } from 'node:net';
import { UsageError } from '../runtime/errors.js';

/** A small flag parser: `--name value`, `--flag`, and positional words. */
export interface ParsedArgs {
  readonly positional: string[];
  readonly flags: Map<string, string | true>;
}

export function parseArgs(argv: readonly string[], booleanFlags: readonly string[]): ParsedArgs {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq > 0 ? eq : undefined);
    if (eq > 0) flags.set(name, arg.slice(eq + 1));
    else if (booleanFlags.includes(name)) flags.set(name, true);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) flags.set(name, argv[++i]);
    // No value: an unknown flag is then told as unknown (checkKnownFlags), a known one as needing a value (stringFlag).
    else flags.set(name, true);
  }
  return { positional, flags };
}

export function stringFlag(args: ParsedArgs, name: string, fallback?: string): string | undefined {
  const v = args.flags.get(name);
  if (v === true) throw new UsageError(`--${name} needs a value`);
  return v ?? fallback;
}

/** An address or host name, without a port (`--bind 127.0.0.1:6084` failed deep in the socket, as an internal error). */
export function hostFlag(args: ParsedArgs, name: string, fallback?: string): string | undefined {
  const v = stringFlag(args, name, fallback);
  if (v === undefined || isIP(v) !== 0 || /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(v)) return v;
  throw new UsageError(`--${name} takes an address such as 192.168.1.2, without a port (the ports are --overlay-port and --sip-port)`);
}

export function requiredFlag(args: ParsedArgs, name: string): string {
  const v = stringFlag(args, name);
  if (v === undefined) throw new UsageError(`--${name} is required`);
  return v;
}

export function numberFlag(args: ParsedArgs, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = stringFlag(args, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number from ${min} to ${max}`);
  return n;
}

/** Every flag one of `known`, and at most `words` positional words (a stray word is a mistake, not ignored). */
export function checkKnownFlags(args: ParsedArgs, known: readonly string[], words = 0): void {
  for (const name of args.flags.keys()) if (!known.includes(name)) throw new UsageError(`unknown flag --${name}`);
  if (args.positional.length > words) throw new UsageError(`unexpected "${args.positional[words]}"`);
}
