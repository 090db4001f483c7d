import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Clock } from '../../runtime/clock.js';
import { KeyCounts } from '../../runtime/key-counts.js';
import type { Logger } from '../../runtime/log.js';
import { P2psipError } from '../../runtime/errors.js';
import { KeyedRateLimiter, type RateLimit } from '../../runtime/token-bucket.js';
import { type Address, sourceBlock } from '../../wire/address.js';
import { decodeAnswer, decodeRequest, encodeAnswer, encodeRequest, type EnrollmentAnswer, type EnrollmentRequest, MAX_ENROLLMENT_MESSAGE } from './enrollment-protocol.js';

/** One length-framed CBOR message each way over TCP, on the overlay's port number. */
const TIMEOUT_MS = 10_000;

export class EnrollmentUnreachable extends P2psipError {
  override readonly name = 'EnrollmentUnreachable';
}

function frame(body: Uint8Array): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
}

/** Collects one framed message from a socket; rejects oversize frames before buffering them. */
function readFrame(socket: Socket): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const fail = (error: Error): void => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(TIMEOUT_MS, () => fail(new EnrollmentUnreachable('enrollment timed out')));
    socket.on('error', (e) => fail(new EnrollmentUnreachable(`enrollment connection failed: ${e.message}`)));
    socket.on('end', () => fail(new EnrollmentUnreachable('enrollment connection closed early')));
    // Chunks are kept as they come and joined once the frame is whole: a request trickled a byte
    // at a time costs linear work.
    const chunks: Buffer[] = [];
    let received = 0;
    let length: number | undefined;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      received += chunk.length;
      if (length === undefined) {
        if (received < 4) return;
        length = Buffer.concat(chunks).readUInt32BE(0);
        if (length > MAX_ENROLLMENT_MESSAGE) return fail(new EnrollmentUnreachable('enrollment message too large'));
      }
      if (received >= 4 + length) {
        // One message each way: whatever follows it is not read, nor kept.
        socket.off('data', onData);
        socket.pause();
        socket.removeAllListeners('end');
        resolve(new Uint8Array(Buffer.concat(chunks).subarray(4, 4 + length)));
      }
    };
    socket.on('data', onData);
  });
}

/** Bounds on the enrollment listener: it faces anyone who can reach the authority's port. */
export interface EnrollmentServerLimits {
  /** Connections open at once, in all. */
  readonly maxConnections: number;
  /** Connections open at once from one IPv4 address or IPv6 /64. */
  readonly maxPerSource: number;
  /** A connection is closed this long after it opened, whatever it is doing (slow senders too). */
  readonly deadlineMs: number;
  /**
   * Connections from one source over time: each request costs a signature check, and a source
   * that opens, asks and closes at once would otherwise be held by nothing. A home's devices
   * enroll once and renew rarely, so even many homes behind one carrier NAT stay well within it.
   */
  readonly perSourceRate: RateLimit;
}

export const DEFAULT_ENROLLMENT_SERVER_LIMITS: EnrollmentServerLimits = { maxConnections: 64, maxPerSource: 4, deadlineMs: TIMEOUT_MS, perSourceRate: { burst: 20, ratePerSecond: 0.5 } };

export class EnrollmentServer {
  private readonly server: Server;
  private readonly perSource = new KeyCounts();
  private readonly rate: KeyedRateLimiter<string>;
  private open = 0;
  /** Connections refused by the limits above, for status and tests. */
  refused = 0;

  constructor(
    answer: (request: EnrollmentRequest) => EnrollmentAnswer,
    private readonly log: Logger,
    clock: Clock,
    limits: EnrollmentServerLimits = DEFAULT_ENROLLMENT_SERVER_LIMITS,
  ) {
    this.rate = new KeyedRateLimiter(limits.perSourceRate, clock);
    this.server = createServer((socket) => {
      const source = sourceBlock(socket.remoteAddress ?? '?');
      if (this.open >= limits.maxConnections || this.perSource.of(source) >= limits.maxPerSource || !this.rate.allow(source)) {
        this.refused++;
        socket.destroy();
        return;
      }
      this.open++;
      this.perSource.add(source);
      const deadline = setTimeout(() => socket.destroy(), limits.deadlineMs);
      socket.once('close', () => {
        clearTimeout(deadline);
        this.open--;
        this.perSource.remove(source);
      });
      readFrame(socket).then(
        (bytes) => {
          let result: EnrollmentAnswer;
          try {
            result = answer(decodeRequest(bytes));
          } catch (error) {
            result = { ok: false, reason: `malformed request: ${(error as Error).message}` };
          }
          log.info('enrollment', { peer: socket.remoteAddress ?? '?', ok: result.ok, ...(result.ok ? {} : { reason: result.reason }) });
          socket.end(frame(encodeAnswer(result)));
        },
        () => socket.destroy(),
      );
    });
  }

  listen(address: Address): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(address.port, address.host, () => {
        this.server.off('error', reject);
        // Later errors (out of file descriptors when accepting) are the listener's to survive.
        this.server.on('error', (error) => this.log.warn('enrollment-listener-error', { error }));
        resolve();
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export function sendEnrollment(to: Address, request: EnrollmentRequest): Promise<EnrollmentAnswer> {
  const socket = createConnection({ host: to.host, port: to.port });
  const answer = readFrame(socket).then(decodeAnswer);
  socket.once('connect', () => socket.write(frame(encodeRequest(request))));
  return answer.finally(() => socket.destroy());
}
