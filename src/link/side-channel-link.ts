import type { Link, LinkPeer } from './link.js';
import type { Address } from '../wire/address.js';

/*
 * The overlay port also carries calls' media between home peers whose media ports cannot reach
 * each other (issue 16): a media frame is one marker byte and an opaque body (already sealed end
 * to end by the two homes' call keys). The marker sits where RFC 7983 leaves the first byte
 * unassigned (192-255), apart from STUN (0-3) and our sealed link frames (128-159), so this
 * layer takes media frames off before the sealed link sees them and passes the rest through.
 * Beneath it the relay link still applies: through a relay, media goes the way the link goes.
 */
export const MEDIA_FRAME_MARKER = 0xd0;

export class SideChannelLink implements Link {
  private handler: (from: Address, datagram: Uint8Array, peer?: LinkPeer) => void = () => {};
  private mediaHandler: (from: Address, body: Uint8Array) => void = () => {};
  mediaFramesIn = 0;
  mediaFramesOut = 0;

  constructor(private readonly inner: Link) {
    inner.onDatagram((from, datagram, peer) => {
      if (datagram.length > 1 && datagram[0] === MEDIA_FRAME_MARKER) {
        this.mediaFramesIn++;
        this.mediaHandler(from, datagram.subarray(1));
        return;
      }
      this.handler(from, datagram, peer);
    });
  }

  get localAddress(): Address {
    return this.inner.localAddress;
  }

  send(to: Address, datagram: Uint8Array): void {
    this.inner.send(to, datagram);
  }

  /** Sends a media frame's body to `to` (a node's address on the overlay, perhaps through a relay). */
  sendMedia(to: Address, body: Uint8Array): void {
    const datagram = new Uint8Array(body.length + 1);
    datagram[0] = MEDIA_FRAME_MARKER;
    datagram.set(body, 1);
    this.mediaFramesOut++;
    this.inner.send(to, datagram);
  }

  onDatagram(handler: (from: Address, datagram: Uint8Array, peer?: LinkPeer) => void): void {
    this.handler = handler;
  }

  onMedia(handler: (from: Address, body: Uint8Array) => void): void {
    this.mediaHandler = handler;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
