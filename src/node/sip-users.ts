import { statSync } from 'node:fs';
import path from 'node:path';
import { type DigestAlgorithm, ha1 } from '../usages/sip/auth/digest.js';
import type { Credentials } from '../usages/sip/registrar/registrar.js';
import { P2psipError } from '../runtime/errors.js';
import { readArray, readList, readText } from '../wire/schema.js';
import { readCborFile, writeCborFile } from './cbor-file.js';

/*
 * The family's SIP users on their home peer: DIR/sip-users.cbor = [realm, [* [name, ha1-md5,
 * ha1-sha256]]] (mode 0600). Only digests are kept (RFC 3261 s22.4 HA1), never passwords. The
 * running peer rereads the file when it changes, so `p2psip user add` takes effect at once.
 */
const FILE = 'sip-users.cbor';
/** A user's local name, the same everywhere (registrar, household ledger, CLI): simple enough for any phone's keypad. */
export const USER_NAME = /^[a-z0-9][a-z0-9._-]{0,31}$/;

/** The SIP domain (and digest realm) of a home: the domain of its user name, else the overlay's name. */
export function sipDomain(subject: string, overlayName: string): string {
  const at = subject.lastIndexOf('@');
  return (at >= 0 ? subject.slice(at + 1) : overlayName).toLowerCase();
}

export class SipUserError extends P2psipError {
  override readonly name = 'SipUserError';
}

interface UserRecord {
  readonly name: string;
  readonly ha1: Readonly<Record<DigestAlgorithm, string>>;
}

export class SipUserStore implements Credentials {
  private users = new Map<string, UserRecord>();
  private loadedMtime = -1;

  constructor(
    private readonly dir: string,
    readonly realm: string,
  ) {
    this.reload();
  }

  add(name: string, password: string): void {
    const user = name.toLowerCase();
    if (!USER_NAME.test(user)) throw new SipUserError(`${name} is not a user name (a-z, 0-9, . _ - and at most 32 characters)`);
    if (password.length < 8) throw new SipUserError('a SIP password has at least 8 characters');
    this.reload();
    this.users.set(user, { name: user, ha1: { MD5: ha1('MD5', user, this.realm, password), 'SHA-256': ha1('SHA-256', user, this.realm, password) } });
    this.save();
  }

  remove(name: string): boolean {
    this.reload();
    const removed = this.users.delete(name.toLowerCase());
    if (removed) this.save();
    return removed;
  }

  list(): string[] {
    this.reload();
    return [...this.users.keys()].sort();
  }

  lookup(user: string): Readonly<Record<DigestAlgorithm, string>> | undefined {
    this.reload();
    return this.users.get(user.toLowerCase())?.ha1;
  }

  private file(): string {
    return path.join(this.dir, FILE);
  }

  /** Rereads the file when it changed since the last read (one stat per lookup). */
  private reload(): void {
    let mtime: number;
    try {
      mtime = statSync(this.file()).mtimeMs;
    } catch {
      return; // no users yet
    }
    if (mtime === this.loadedMtime) return;
    const value = readCborFile(this.file(), 1 << 20);
    if (value === undefined) return;
    const [realm, list] = readArray(value, '$.users', 2, 2);
    if (readText(realm, '$.users.realm', 253) !== this.realm) {
      throw new SipUserError(`${this.file()} holds users of realm ${String(realm)}, not ${this.realm}: their passwords must be set again`);
    }
    this.users = new Map(
      readList(list, '$.users.list', 10_000, (item, p) => {
        const [name, md5, sha256] = readArray(item, p, 3, 3);
        const record = { name: readText(name, `${p}.name`, 64), ha1: { MD5: readText(md5, `${p}.md5`, 64), 'SHA-256': readText(sha256, `${p}.sha256`, 64) } };
        return [record.name, record] as const;
      }),
    );
    this.loadedMtime = mtime;
  }

  private save(): void {
    writeCborFile(this.file(), [this.realm, [...this.users.values()].map((u) => [u.name, u.ha1.MD5, u.ha1['SHA-256']])], 0o600);
    this.loadedMtime = statSync(this.file()).mtimeMs;
  }
}
