import { DEFAULT_HOUSEHOLD_SIZE } from '../node/enrollment/household-ledger.js';
import { callPeer } from '../node/control-client.js';
import { EnrollmentAuthority } from '../node/enrollment/enrollment-authority.js';
import { enrollWithInvitation } from '../node/enrollment/enrollment-client.js';
import { loadIdentity } from '../node/identity-store.js';
import { SystemRandom } from '../runtime/random.js';
import { UsageError } from '../runtime/errors.js';
import { idToHex } from '../wire/id.js';
import { checkKnownFlags, numberFlag, type ParsedArgs, requiredFlag, stringFlag } from './args.js';
import { renderQrCode } from './qr-code.js';

type Print = (text: string) => void;
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** `p2psip init --data DIR --overlay NAME`: a new overlay, its authority, and the first peer's identity. */
export function initCommand(args: ParsedArgs, out: Print): number {
  checkKnownFlags(args, ['data', 'overlay', 'domain', 'user', 'cert-lifetime', 'json']);
  const dir = requiredFlag(args, 'data');
  const overlay = requiredFlag(args, 'overlay');
  if (!/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/i.test(overlay)) throw new UsageError('--overlay is a DNS-style name such as smiths.example');
  if (loadIdentity(dir)) throw new UsageError(`${dir} already holds an identity`);
  const { authority, identity } = EnrollmentAuthority.create(
    dir,
    {
      overlay,
      domain: stringFlag(args, 'domain'),
      user: stringFlag(args, 'user'),
      certificateLifetimeSeconds: args.flags.has('cert-lifetime') ? numberFlag(args, 'cert-lifetime', 0, 10, 10 * 365 * 86_400) : undefined,
    },
    new SystemRandom(),
    nowSeconds(),
  );
  const result = { overlay, authority: authority.name, fingerprint: authority.fingerprint, nodeId: idToHex(identity.nodeId), user: identity.certificate.claims.subject };
  out(
    args.flags.has('json')
      ? JSON.stringify(result)
      : `overlay ${overlay} created in ${dir}\n  authority ${result.authority} (key ${result.fingerprint})\n  first peer ${result.user}, Node-ID ${result.nodeId}\nnext: p2psip start --data ${dir}`,
  );
  return 0;
}

/** `p2psip invite`: asks the running authority peer for a one-time token. */
export async function inviteCommand(args: ParsedArgs, out: Print): Promise<number> {
  checkKnownFlags(args, ['data', 'user', 'client', 'expires', 'household', 'json']);
  const result = (await callPeer(requiredFlag(args, 'data'), {
    op: 'invite',
    user: stringFlag(args, 'user'),
    client: args.flags.has('client'),
    ttlSeconds: numberFlag(args, 'expires', 3600, 1, 30 * 86_400),
    household: numberFlag(args, 'household', DEFAULT_HOUSEHOLD_SIZE, 0, 1000),
  })) as { token: string; expires: string; user: string | null; household: number; enrollAt: string };
  if (args.flags.has('json')) {
    out(JSON.stringify(result));
    return 0;
  }
  out(renderQrCode(result.token));
  out(`invitation${result.user ? ` for ${result.user}` : ''}, one use, valid until ${result.expires}; the home may add ${result.household} users:\n\n  ${result.token}\n`);
  out(`on the new device: p2psip join ${result.token} --data DIR`);
  return 0;
}

/** `p2psip join TOKEN --data DIR`: enrolls once; the caller then starts the peer. */
export async function enrollFromArgs(args: ParsedArgs, out: Print): Promise<void> {
  const token = args.positional[0];
  if (!token) throw new UsageError('join needs the invitation TOKEN');
  const dir = requiredFlag(args, 'data');
  if (loadIdentity(dir)) throw new UsageError(`${dir} already holds an identity: use p2psip start --data ${dir}`);
  const { identity, config } = await enrollWithInvitation(token, dir, new SystemRandom(), nowSeconds());
  out(`enrolled in ${config.config.overlay} as ${identity.certificate.claims.subject}, Node-ID ${idToHex(identity.nodeId)}`);
}

/** `p2psip revoke USER --data DIR` (or `--fingerprint FP`): the root authority revokes a device's key. */
export async function revokeCommand(args: ParsedArgs, out: Print): Promise<number> {
  checkKnownFlags(args, ['data', 'fingerprint', 'json'], 1);
  const user = args.positional[0];
  const fingerprint = stringFlag(args, 'fingerprint');
  if (!user === !fingerprint) throw new UsageError('revoke needs a USER or --fingerprint FP (one of them)');
  const result = (await callPeer(requiredFlag(args, 'data'), { op: 'revoke', user, fingerprint })) as {
    users: string[];
    fingerprints: string[];
    configSequence: number;
    revoked: number;
  };
  out(
    args.flags.has('json')
      ? JSON.stringify(result)
      : `revoked ${result.fingerprints.join(', ')}${result.users.length ? ` (${result.users.join(', ')})` : ''}; configuration ${result.configSequence} (${result.revoked} revoked in all) is on its way to every peer`,
  );
  return 0;
}
