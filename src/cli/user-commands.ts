import { randomBytes } from 'node:crypto';
import { loadIdentity } from '../node/identity-store.js';
import { sipDomain, SipUserStore } from '../node/sip-users.js';
import { UsageError } from '../runtime/errors.js';
import { checkKnownFlags, type ParsedArgs, requiredFlag, stringFlag } from './args.js';

type Print = (text: string) => void;

/**
 * `p2psip user add NAME [--password P] [--replace] | list | remove NAME --data DIR`: the family's SIP
 * accounts on their home peer. Works on the data directory directly; a running peer picks the
 * change up at the next REGISTER.
 */
export function userCommand(args: ParsedArgs, out: Print): number {
  checkKnownFlags(args, ['data', 'password', 'json', 'replace']);
  const [action, name] = args.positional;
  const dir = requiredFlag(args, 'data');
  const stored = loadIdentity(dir);
  if (!stored) throw new UsageError(`no identity in ${dir}: run p2psip init, join or start --open first`);
  const { claims } = stored.identity.certificate;
  const store = new SipUserStore(dir, sipDomain(claims.subject, claims.overlay));
  const json = args.flags.has('json');
  switch (action) {
    case 'add': {
      if (!name) throw new UsageError('user add needs a NAME');
      const given = stringFlag(args, 'password');
      const password = given ?? randomBytes(12).toString('base64url');
      // A second `user add` would silently change a phone's password: only when asked for.
      if (store.list().includes(name.toLowerCase()) && !args.flags.has('replace')) throw new UsageError(`${name} is already a user here: add --replace to set a new password`);
      store.add(name, password);
      const aor = `sip:${name.toLowerCase()}@${store.realm}`;
      if (json) out(JSON.stringify({ user: name.toLowerCase(), aor, realm: store.realm, ...(given ? {} : { password }) }));
      else out(`added ${aor} (realm ${store.realm})${given ? '' : `\n  password: ${password}   (shown once: set it in the phone now)`}`);
      return 0;
    }
    case 'remove': {
      if (!name) throw new UsageError('user remove needs a NAME');
      const removed = store.remove(name);
      out(json ? JSON.stringify({ user: name.toLowerCase(), removed }) : removed ? `removed ${name}` : `no user ${name}`);
      return removed ? 0 : 1;
    }
    case 'list': {
      const users = store.list();
      out(json ? JSON.stringify({ realm: store.realm, users }) : users.length ? users.map((u) => `sip:${u}@${store.realm}`).join('\n') : '(no users)');
      return 0;
    }
    default:
      throw new UsageError('user takes add NAME, list or remove NAME');
  }
}
