import type { NodeIdentity } from '../identity/identity.js';
import { userName } from './overlay-names.js';
import { sipDomain } from './sip-users.js';
import { resourceId } from '../identity/ids.js';
import { P2psipError, UsageError } from '../runtime/errors.js';
import { directoryResourceId, nodeMultipleResourceId, nodeResourceId } from '../storage/access-control.js';
import type { KindDefinition, KindRegistry } from '../storage/kind.js';
import type { FetchResult, StorageClient } from '../storage/storage-client.js';
import { parseCertificate } from '../identity/certificate.js';
import type { StoreAns } from '../wire/messages/store.js';
import { idFromHex, idToBytes, idToHex, type Id } from '../wire/id.js';
import type { EntryKey } from '../wire/messages/stored-data.js';

/*
 * `p2psip store KIND NAME VALUE` and `p2psip fetch KIND NAME`: what a person debugging an overlay
 * types, turned into Resource-IDs and entry keys the way each kind's access policy expects:
 *   USER-MATCH, USER-NODE-MATCH  NAME is a user name (resource = H(NAME))
 *   NODE-MATCH                   NAME is a Node-ID in hex, or "self"
 *   NODE-MULTIPLE                NAME is NODE-ID/INDEX (or self/INDEX)
 */
export interface StoreCommand {
  readonly kind: string;
  readonly name: string;
  readonly value: string;
  readonly index?: number;
  readonly key?: string;
  readonly lifetime?: number;
}

export interface FetchedValue {
  key: string | number | null;
  /** The value as text, or in hex when it is not UTF-8 text (a kind whose values are CBOR, such as RELAY-SERVICE). */
  value: string;
  encoding: 'utf8' | 'hex';
  storedAt: string;
  lifetime: number;
  signer: string;
}

function kindOf(kinds: KindRegistry, name: string): KindDefinition {
  const kind = kinds.named(name);
  if (!kind) throw new UsageError(`unknown kind ${name} (known: ${kinds.all().map((k) => k.name).join(', ')})`);
  return kind;
}

function nodeIdOf(text: string, identity: NodeIdentity): Id {
  return text === 'self' ? identity.nodeId : idFromHex(text);
}

export function resourceFor(kind: KindDefinition, name: string, identity: NodeIdentity): Id {
  switch (kind.policy) {
    case 'USER-MATCH':
    case 'USER-NODE-MATCH':
      return resourceId(userName(name, sipDomain(identity.certificate.claims.subject, identity.certificate.claims.overlay)));
    case 'NODE-KEYED': {
      // A directory at its kind's own name, and nowhere else (access-control.ts).
      const directory = kind.name.toLowerCase();
      if (name.toLowerCase() !== directory) throw new UsageError(`${kind.name} is stored at "${directory}" only`);
      return directoryResourceId(kind);
    }
    case 'NODE-MATCH':
      return nodeResourceId(nodeIdOf(name, identity));
    case 'NODE-MULTIPLE': {
      const [node, index] = name.split('/');
      return nodeMultipleResourceId(nodeIdOf(node, identity), Number(index ?? 0));
    }
  }
}

function keyFor(kind: KindDefinition, command: StoreCommand, identity: NodeIdentity, nextIndex: number): EntryKey {
  if (kind.model === 'single') return null;
  if (kind.model === 'array') return command.index ?? nextIndex;
  return command.key !== undefined ? new TextEncoder().encode(command.key) : idToBytes(identity.nodeId);
}

function wrap<T>(start: (done: (error: P2psipError | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => start((error, value) => (error ? reject(error) : resolve(value as T))));
}

export async function storeCommand(client: StorageClient, kinds: KindRegistry, identity: NodeIdentity, command: StoreCommand) {
  const kind = kindOf(kinds, command.kind);
  const resource = resourceFor(kind, command.name, identity);
  // Arrays append after what is there unless an index is given.
  const existing = kind.model === 'array' && command.index === undefined ? await wrap<{ values: unknown[] }>((d) => client.fetch(kind, resource, { all: true }, d)) : undefined;
  const entry = { key: keyFor(kind, command, identity, existing?.values.length ?? 0), exists: true, value: new TextEncoder().encode(command.value) };
  const answer = await wrap<StoreAns>((d) => client.store(kind, resource, [entry], command.lifetime ?? 3600, d));
  return {
    kind: kind.name,
    resourceId: idToHex(resource),
    key: typeof entry.key === 'number' || entry.key === null ? entry.key : Buffer.from(entry.key).toString('hex'),
    generation: Number(answer.kinds[0]?.generation ?? 0n),
    replicas: (answer.kinds[0]?.replicas ?? []).map(idToHex),
  };
}

export async function fetchCommand(client: StorageClient, kinds: KindRegistry, identity: NodeIdentity, kindName: string, name: string) {
  const kind = kindOf(kinds, kindName);
  const resource = resourceFor(kind, name, identity);
  const result = await wrap<FetchResult>((d) => client.fetch(kind, resource, { all: true }, d));
  const values: FetchedValue[] = result.values.map((v) => ({
    key: typeof v.entry.key === 'number' || v.entry.key === null ? v.entry.key : Buffer.from(v.entry.key).toString('hex'),
    ...readableValue(v.entry.value),
    storedAt: new Date(Number(v.storageTime)).toISOString(),
    lifetime: v.lifetime,
    signer: parseCertificate(v.certificate).claims.subject,
  }));
  return { kind: kind.name, resourceId: idToHex(resource), generation: Number(result.generation), responder: idToHex(result.responder), rejected: result.rejected, values };
}

/** A stored value as a person reads it: text when it is printable UTF-8, else hex. */
export function readableValue(bytes: Uint8Array): { value: string; encoding: 'utf8' | 'hex' } {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    // Tabs and line ends are text; other C0 and C1 controls (a terminal would act on them) are not.
    if (!/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/.test(text)) return { value: text, encoding: 'utf8' };
  } catch {
    // not UTF-8
  }
  return { value: Buffer.from(bytes).toString('hex'), encoding: 'hex' };
}
