import path from 'node:path';
import { readArray, readList, readText, readUint } from '../../wire/schema.js';
import { readCborFile, writeCborFile } from '../cbor-file.js';
import { USER_NAME } from '../sip-users.js';
import { EnrollmentRefused } from './enrollment-errors.js';

/*
 * Which home holds which user (RFC 7890's users are people; a home peer serves a household of
 * them). Kept by the enrollment authority, so that a user name means one person in the whole
 * overlay and each home adds users only up to the household size its invitation allowed.
 *   DIR/households.cbor = [homes: [* [home-subject, household-size]], users: [* [user-subject, home-subject]]]
 */
export const DEFAULT_HOUSEHOLD_SIZE = 8;
const FILE = 'households.cbor';

export class HouseholdLedger {
  private readonly sizes = new Map<string, number>();
  private readonly holders = new Map<string, string>();

  constructor(private readonly dir: string) {
    this.load();
  }

  /** A home enrolled through an invitation may hold this many users (`invite --household N`). */
  setHouseholdSize(home: string, size: number): void {
    this.sizes.set(home, size);
    this.save();
  }

  /**
   * `user` (a full subject) is to be held by `home`: refused when another home holds it or the
   * home's household is full. A home may ask again for a user it holds (a new key, a renewal).
   */
  claim(user: string, home: string, { unlimited = false } = {}): void {
    const local = user.slice(0, user.lastIndexOf('@'));
    if (!USER_NAME.test(local)) throw new EnrollmentRefused(`"${local}" is not a user name (a-z, 0-9, . _ - and at most 32 characters)`);
    const holder = this.holders.get(user);
    if (holder === home) return;
    if (holder !== undefined) throw new EnrollmentRefused(`${local} is taken: another home holds that name`);
    if (!unlimited) {
      const size = this.sizes.get(home) ?? DEFAULT_HOUSEHOLD_SIZE;
      const held = [...this.holders.values()].filter((h) => h === home).length;
      if (held >= size) throw new EnrollmentRefused(`this home already holds ${held} users, as many as its invitation allows (invite --household N)`);
    }
    this.holders.set(user, home);
    this.save();
  }

  /** Throws unless `home` may give `user` up: it holds it, and it is not the name the device itself was enrolled under. */
  checkRelease(user: string, home: string): void {
    if (this.holders.get(user) !== home) throw new EnrollmentRefused(`${user.slice(0, user.lastIndexOf('@'))} is not held by this home`);
    if (user === home) throw new EnrollmentRefused('that is the name this device was enrolled under: it goes with the device (revoke it at the authority)');
  }

  /** `home` gives `user` up (see checkRelease): the name is free again. */
  release(user: string, home: string): void {
    this.checkRelease(user, home);
    this.holders.delete(user);
    this.save();
  }

  /** The home holding `user`, if any. */
  holderOf(user: string): string | undefined {
    return this.holders.get(user);
  }

  /** Every user and the home holding it, for `user list --all`. */
  users(): { user: string; home: string }[] {
    return [...this.holders].map(([user, home]) => ({ user, home })).sort((a, b) => a.user.localeCompare(b.user));
  }

  private load(): void {
    const value = readCborFile(path.join(this.dir, FILE), 4 << 20);
    if (value === undefined) return;
    const [homes, users] = readArray(value, '$.households', 2, 2);
    for (const [home, size] of readList(homes, '$.households.homes', 100_000, (item, p) => {
      const [h, n] = readArray(item, p, 2, 2);
      return [readText(h, `${p}.home`, 256), readUint(n, `${p}.size`, 10_000)] as const;
    })) {
      this.sizes.set(home, size);
    }
    for (const [user, home] of readList(users, '$.households.users', 100_000, (item, p) => {
      const [u, h] = readArray(item, p, 2, 2);
      return [readText(u, `${p}.user`, 256), readText(h, `${p}.home`, 256)] as const;
    })) {
      this.holders.set(user, home);
    }
  }

  private save(): void {
    writeCborFile(path.join(this.dir, FILE), [[...this.sizes], [...this.holders]]);
  }
}
