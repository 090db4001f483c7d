import { randomBytes } from 'node:crypto';
import { loadConfig } from '../node/config/config-file.js';
import { callPeer, PeerNotRunningError } from '../node/control-client.js';
import { type ControlRequest, controlSocketPath } from '../node/control-protocol.js';
import { socketAnswers } from '../node/data-dir-lock.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { EnrollmentAuthority } from '../node/enrollment/enrollment-authority.js';
import type { HouseholdUser } from '../node/household-users.js';
import { loadIdentity, type StoredIdentity } from '../node/identity-store.js';
import { DiskUserSigners, userCertificateSource, type UserCertificateState, type UserRelease } from '../node/sip-signers.js';
import { sipDomain, SipUserStore, USER_NAME } from '../node/sip-users.js';
import { UsageError } from '../runtime/errors.js';
import { silentLogger } from '../runtime/log.js';
import { SystemRandom } from '../runtime/random.js';
import { checkKnownFlags, type ParsedArgs, requiredFlag, stringFlag } from './args.js';

type Print = (text: string) => void;

/** How long a command waits for a `join` still enrolling in the directory (it asks the authority over the network). */
const ENROLLING_WAIT_MS = 60_000;

/** The directory's identity; while a `join` there is still enrolling (it holds the directory), waited for. */
async function identityOf(dir: string): Promise<StoredIdentity | undefined> {
  // A deadline, not a count of sleeps: each probe of the socket may take up to 2 s itself.
  for (const deadline = Date.now() + ENROLLING_WAIT_MS; ; await sleep(250)) {
    const stored = loadIdentity(dir);
    if (stored || Date.now() >= deadline || !(await socketAnswers(controlSocketPath(dir)))) return stored;
  }
}

/**
 * `p2psip user add NAME [--password P] [--replace] | list [--all] | remove NAME --data DIR`: the
 * people of this home and their SIP accounts. A user is reachable from other homes only with a
 * certificate from the overlay's authority: `add` asks for it at once (through the running peer,
 * or itself when none runs) and says whether it was issued, is pending or was refused.
 */
export async function userCommand(args: ParsedArgs, out: Print): Promise<number> {
  checkKnownFlags(args, ['data', 'password', 'json', 'replace', 'all'], 2);
  const [action, given] = args.positional;
  const dir = requiredFlag(args, 'data');
  const stored = await identityOf(dir);
  if (!stored) throw new UsageError(`no identity in ${dir}: run p2psip init, join or start --open first`);
  const { claims } = stored.identity.certificate;
  const store = new SipUserStore(dir, sipDomain(claims.subject, claims.overlay));
  const json = args.flags.has('json');
  const name = given?.toLowerCase();
  switch (action) {
    case 'add': {
      if (!name) throw new UsageError('user add needs a NAME');
      if (!USER_NAME.test(name)) throw new UsageError(`"${given}" is not a user name: a-z, 0-9, . _ - and at most 32 characters`);
      const password = stringFlag(args, 'password');
      const made = password ?? randomBytes(12).toString('base64url');
      const existed = store.list().includes(name);
      // A second `user add` would silently change a phone's password: only when asked for.
      if (existed && !args.flags.has('replace')) throw new UsageError(`${name} is already a user here: add --replace to set a new password`);
      store.add(name, made);
      const certificate = await obtainCertificate(dir, stored, name);
      const aor = `sip:${name}@${store.realm}`;
      if (certificate.state === 'refused' && !existed) store.remove(name); // it would never be reachable: do not keep it
      if (json) out(JSON.stringify({ user: name, aor, realm: store.realm, certificate, ...(password || certificate.state === 'refused' ? {} : { password: made }) }));
      else if (certificate.state === 'refused') out(`not added: the overlay's authority refused ${aor}: ${certificate.reason}`);
      else out(`added ${aor} (realm ${store.realm})\n  certificate: ${describe(certificate)}${password ? '' : `\n  password: ${made}   (shown once: set it in the phone now)`}`);
      return certificate.state === 'refused' ? 1 : 0;
    }
    case 'remove': {
      if (!name) throw new UsageError('user remove needs a NAME');
      const removed = store.remove(name);
      if (stored.mode === 'open') {
        // No authority holds names in an open overlay: nothing to give back.
        out(json ? JSON.stringify({ user: name, removed }) : removed ? `removed ${name}` : `no user ${name}`);
        return removed ? 0 : 1;
      }
      // The name and its place in the household go back to the overlay's authority; asked again
      // for a user removed here before, when the authority could not be asked then.
      const release = await releaseUser(dir, stored, name);
      if (!removed) {
        if (json) out(JSON.stringify({ user: name, removed, ...release }));
        else out(release.released ? `no user ${name} here; the authority has freed the name now` : `no user ${name}`);
        return release.released ? 0 : 1;
      }
      if (json) out(JSON.stringify({ user: name, removed, ...release }));
      else out(release.released ? `removed ${name}; the name is free again, and its certificate revoked` : `removed ${name} here; the authority still counts the name as this home's: ${release.reason}`);
      return 0;
    }
    case 'list': {
      if (args.flags.has('all')) return listHouseholds(dir, json, out);
      const users = await listUsers(dir, stored, store);
      if (json) out(JSON.stringify({ realm: store.realm, users }));
      else out(users.length ? users.map((u) => `${u.aor}  certificate ${describe(u.certificate)}; ${u.phones} phone${u.phones === 1 ? '' : 's'} on; ${u.published ? 'reachable from other homes' : 'not in the overlay'}`).join('\n') : '(no users)');
      return 0;
    }
    default:
      throw new UsageError('user takes add NAME, list [--all] or remove NAME');
  }
}

function describe(state: UserCertificateState): string {
  switch (state.state) {
    case 'issued':
      return `issued, valid until ${state.expires}`;
    case 'pending':
      return `pending (${state.reason}); the running peer asks again every 15 s`;
    case 'refused':
      return `refused: ${state.reason}`;
    case 'revoked':
      return 'REVOKED by the overlay\'s authority: other homes no longer reach this user here';
    default:
      return 'not asked for yet';
  }
}

/** Asks the running peer; when none runs, `offline` does the same from here. */
async function viaPeer<T>(dir: string, request: ControlRequest, offline: () => T | Promise<T>): Promise<T> {
  try {
    return (await callPeer(dir, request)) as T;
  } catch (error) {
    if (!(error instanceof PeerNotRunningError)) throw error;
  }
  return offline();
}

/** Through the running peer (it keeps retrying); otherwise from here, once. */
function obtainCertificate(dir: string, stored: StoredIdentity, user: string): Promise<UserCertificateState> {
  return viaPeer(dir, { op: 'user-certificate', user }, () => offlineSigners(dir, stored).obtain(user));
}

/** Through the running peer (it also drops the user's phones); otherwise from here. */
function releaseUser(dir: string, stored: StoredIdentity, user: string): Promise<UserRelease> {
  return viaPeer(dir, { op: 'user-release', user }, () => offlineSigners(dir, stored).release(user));
}

function listUsers(dir: string, stored: StoredIdentity, store: SipUserStore): Promise<HouseholdUser[]> {
  return viaPeer(dir, { op: 'users' }, () => {
    const signers = offlineSigners(dir, stored);
    return store.list().map((user) => ({ user, aor: `sip:${user}@${store.realm}`, certificate: signers.state(user), phones: 0, published: false }));
  });
}

/** `user list --all`, at the authority: every user of the overlay and the home that holds it. */
async function listHouseholds(dir: string, json: boolean, out: Print): Promise<number> {
  const users = await viaPeer<{ user: string; home: string }[]>(dir, { op: 'households' }, () => {
    const config = loadConfig(dir);
    const authority = config && EnrollmentAuthority.load(dir, config, new SystemRandom(), Math.floor(Date.now() / 1000));
    if (!authority) throw new UsageError(`${dir} holds no enrollment authority: run user list --all where p2psip init ran`);
    return authority.households.users();
  });
  out(json ? JSON.stringify({ users }) : users.length ? users.map((u) => `${u.user}  held by ${u.home}`).join('\n') : '(no users held by any home yet)');
  return 0;
}

function offlineSigners(dir: string, stored: StoredIdentity): DiskUserSigners {
  const { identity, mode } = stored;
  const { claims } = identity.certificate;
  const random = new SystemRandom();
  const config = loadConfig(dir);
  const authority = config ? EnrollmentAuthority.load(dir, config, random, Math.floor(Date.now() / 1000)) : undefined;
  const source = mode === 'open' || !config ? undefined : userCertificateSource(identity, authority, () => config.config, random);
  return new DiskUserSigners(dir, identity, sipDomain(claims.subject, claims.overlay), mode === 'open' ? 'open' : 'authority', source, random, () => Math.floor(Date.now() / 1000), silentLogger);
}
