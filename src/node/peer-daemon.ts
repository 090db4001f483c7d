import { networkInterfaces } from 'node:os';
import { OpenTrustPolicy } from '../identity/trust.js';
import { UdpLink } from '../link/udp-link.js';
import { SystemClock } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import { SystemRandom } from '../runtime/random.js';
import type { Address } from '../wire/address.js';
import { ControlServer } from './control-server.js';
import { IdentityMissingError, loadIdentity, loadOrCreateOpenIdentity } from './identity-store.js';
import { OverlayPeer } from './overlay-peer.js';
import { traceRoute } from './route-trace.js';
import { createBackend } from '../storage/backends/registry.js';
import type { ControlRequest } from './control-protocol.js';
import { fetchCommand, storeCommand } from './storage-commands.js';
import type { StorageLimits } from '../storage/resource-store.js';
import path from 'node:path';

/*
 * A peer on a device: real UDP, the system clock and randomness, a control socket in its data
 * directory. Insertion (RFC 7890 s3) happens here on every start; enrollment happened before.
 */
export interface PeerDaemonOptions {
  readonly dataDir: string;
  readonly overlayPort: number;
  readonly bindHost: string;
  readonly advertiseHost?: string;
  readonly bootstrap: readonly Address[];
  readonly open: boolean;
  readonly overlayName: string;
  /** Storage backend name (storage/backends/registry.ts); the file backend by default. */
  readonly storage: string;
  /** Quotas: bytes this peer holds in all, and per Resource-ID. */
  readonly storageLimits?: StorageLimits;
  readonly log: Logger;
}

export const OPEN_MODE_WARNING = 'OPEN OVERLAY: identities are self-issued and anyone can join; use only in labs';

export class PeerDaemon {
  private constructor(
    readonly peer: OverlayPeer,
    private readonly control: ControlServer,
    private readonly log: Logger,
  ) {}

  static async start(options: PeerDaemonOptions): Promise<PeerDaemon> {
    const { log } = options;
    const clock = new SystemClock();
    const random = new SystemRandom();
    const nowSeconds = Math.floor(clock.wallTime() / 1000);
    let stored = loadIdentity(options.dataDir);
    if (!stored || stored.mode === 'open') {
      if (!options.open) {
        throw new IdentityMissingError(
          stored ? `${options.dataDir} holds an open-mode identity: pass --open to run it` : `no identity in ${options.dataDir}: pass --open for a lab overlay (enrollment comes with p2psip init/join)`,
        );
      }
      stored = loadOrCreateOpenIdentity(options.dataDir, options.overlayName, random, nowSeconds);
      log.warn('open-mode', { warning: OPEN_MODE_WARNING });
    }
    const link = await UdpLink.open({ host: options.bindHost, port: options.overlayPort }, log.child('udp'));
    const advertised = { host: options.advertiseHost ?? advertisableHost(options.bindHost), port: link.localAddress.port };
    const peer = new OverlayPeer({
      identity: stored.identity,
      trust: new OpenTrustPolicy(options.overlayName),
      link,
      clock,
      random,
      log,
      overlayName: options.overlayName,
      advertisedAddress: advertised,
      storage: { backend: createBackend(options.storage, path.join(options.dataDir, 'storage')), limits: options.storageLimits },
    });
    let daemon: PeerDaemon | undefined;
    const control = new ControlServer(options.dataDir, (request) => daemon!.handleControl(request), log.child('control'));
    await control.listen();
    daemon = new PeerDaemon(peer, control, log);
    peer.start(options.bootstrap);
    log.info('started', { nodeId: peer.status().nodeId as string, address: `${advertised.host}:${advertised.port}` });
    return daemon;
  }

  /** Leaves the ring gracefully and releases the port and the control socket. */
  async stop(): Promise<void> {
    await this.peer.leave();
    await this.control.close();
    this.log.info('stopped');
  }

  status(): Record<string, unknown> {
    const status = this.peer.status();
    return status.mode === 'open' ? { ...status, warning: OPEN_MODE_WARNING } : status;
  }

  private async handleControl(request: ControlRequest): Promise<unknown> {
    const { client, kinds, identity } = this.peer;
    switch (request.op) {
      case 'status':
        return this.status();
      case 'route':
        return traceRoute(this.peer.router, String(request.name));
      case 'store':
        return storeCommand(client, kinds, identity, request);
      case 'fetch':
        return fetchCommand(client, kinds, identity, request.kind, request.name);
      default:
        throw new Error(`unknown control operation ${(request as { op: string }).op}`);
    }
  }
}

/** The address to tell others: the bind address, or for a wildcard bind the first external IPv4. */
function advertisableHost(bindHost: string): string {
  if (bindHost !== '0.0.0.0' && bindHost !== '::') return bindHost;
  for (const list of Object.values(networkInterfaces())) {
    for (const entry of list ?? []) if (entry.family === 'IPv4' && !entry.internal) return entry.address;
  }
  return '127.0.0.1';
}
