/*
 * Kinds (RFC 6940 s7.4.1): what may be stored under a Resource-ID, in which data model, under
 * which access control policy and within which limits. An overlay's configuration declares them.
 */
export type DataModel = 'single' | 'array' | 'dictionary';
export type AccessPolicy = 'USER-MATCH' | 'NODE-MATCH' | 'USER-NODE-MATCH' | 'NODE-MULTIPLE' | 'NODE-KEYED';

export interface KindDefinition {
  readonly id: number;
  readonly name: string;
  readonly model: DataModel;
  readonly policy: AccessPolicy;
  /** Most entries per Resource-ID (array and dictionary). */
  readonly maxCount: number;
  /** Most bytes per value. */
  readonly maxSize: number;
  /** NODE-MULTIPLE: how many Resource-IDs one node may use. */
  readonly maxNodeMultiple?: number;
}

/** The kinds every p2psip overlay knows unless its configuration says otherwise. */
export const DEFAULT_KINDS: readonly KindDefinition[] = [
  // RFC 7904 s3: AOR -> where the user is, one entry per registering node.
  { id: 1, name: 'SIP-REGISTRATION', model: 'dictionary', policy: 'USER-NODE-MATCH', maxCount: 32, maxSize: 2048 },
  // Relays (TURN-SERVICE, RFC 6940 s9.1 style): a node announces itself under a few IDs.
  { id: 2, name: 'TURN-SERVICE', model: 'single', policy: 'NODE-MULTIPLE', maxCount: 1, maxSize: 256, maxNodeMultiple: 4 },
  // Relay peers (and later media relays) under one well-known name, one entry per relay node:
  // found by name, as RFC 7890 s3 asks of services (usages/relay/relay-directory.ts).
  { id: 3, name: 'RELAY-SERVICE', model: 'dictionary', policy: 'NODE-KEYED', maxCount: 64, maxSize: 128 },
  // For people debugging an overlay with `p2psip store` / `p2psip fetch`.
  { id: 0xf0001, name: 'DEBUG-NOTE', model: 'array', policy: 'USER-MATCH', maxCount: 64, maxSize: 1024 },
  { id: 0xf0002, name: 'DEBUG-NODE', model: 'single', policy: 'NODE-MATCH', maxCount: 1, maxSize: 1024 },
];

export class KindRegistry {
  private readonly byId = new Map<number, KindDefinition>();
  private readonly byName = new Map<string, KindDefinition>();

  constructor(kinds: readonly KindDefinition[] = DEFAULT_KINDS) {
    for (const k of kinds) {
      this.byId.set(k.id, k);
      this.byName.set(k.name.toUpperCase(), k);
    }
  }

  get(id: number): KindDefinition | undefined {
    return this.byId.get(id);
  }

  named(nameOrId: string): KindDefinition | undefined {
    return this.byName.get(nameOrId.toUpperCase()) ?? (/^\d+$/.test(nameOrId) ? this.byId.get(Number(nameOrId)) : undefined);
  }

  all(): KindDefinition[] {
    return [...this.byId.values()];
  }
}
