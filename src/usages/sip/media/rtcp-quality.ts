import type { Side } from './relay-stream.js';

/*
 * Call quality as the phones themselves report it (RFC 3550 s6.4): the anchor reads the report
 * blocks of the RTCP sender and receiver reports that pass through it, and keeps the latest loss
 * fraction and interarrival jitter each side reported. Read-only and bounded: a packet that is
 * not a well-formed report is just relayed, never refused here.
 */
const SENDER_REPORT = 200;
const RECEIVER_REPORT = 201;
const REPORT_BLOCK_BYTES = 24;
/** G.711 and most narrowband audio: RTP timestamps tick 8,000 times a second. */
const AUDIO_CLOCK_PER_MS = 8;

export interface QualityReport {
  /** Percent of packets lost, as the reporting phone saw them arrive. */
  readonly lossPercent: number;
  readonly jitterMs: number;
}

export class RtcpQuality {
  private readonly latest: Partial<Record<Side, QualityReport>> = {};
  /** False for SRTP calls: their reports are encrypted past the header (RFC 3711 s3.4). */
  readable = true;

  /**
   * A datagram (plain, after any internet-leg sealing came off) that `side` sent: RTCP, or RTP
   * beside it on a muxed port, which has no report block where an SR or RR has one (RFC 5761 s4).
   */
  observe(side: Side, packet: Uint8Array): void {
    if (!this.readable) return;
    const report = firstReportBlock(packet);
    if (report) this.latest[side] = report;
  }

  /** The worse of what the two sides last reported, or undefined before any report. */
  summary(): QualityReport | undefined {
    const reports = Object.values(this.latest);
    if (reports.length === 0) return undefined;
    return {
      lossPercent: Math.max(...reports.map((r) => r.lossPercent)),
      jitterMs: Math.max(...reports.map((r) => r.jitterMs)),
    };
  }
}

/** The first report block of the first SR or RR in a compound RTCP packet. */
export function firstReportBlock(packet: Uint8Array): QualityReport | undefined {
  if (packet.length < 8 || packet[0] >> 6 !== 2) return undefined;
  const count = packet[0] & 0x1f;
  const type = packet[1];
  if (count === 0 || (type !== SENDER_REPORT && type !== RECEIVER_REPORT)) return undefined;
  const block = type === SENDER_REPORT ? 28 : 8;
  if (packet.length < block + REPORT_BLOCK_BYTES) return undefined;
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  const fractionLost = packet[block + 4];
  const jitter = view.getUint32(block + 12);
  return { lossPercent: Math.round((fractionLost / 256) * 1000) / 10, jitterMs: Math.round((jitter / AUDIO_CLOCK_PER_MS) * 10) / 10 };
}
