import DgramAsPromised from 'dgram-as-promised';
import { isIP } from 'node:net';
import type { Logger } from '../runtime/log.js';
import type { MediaSocket, MediaSocketFactory } from '../usages/sip/media/media-anchor.js';

/**
 * The anchor's media ports on real UDP (through dgram-as-promised, like the overlay's link).
 * A port someone else holds is reported as undefined, so the anchor passes over it; a fault in
 * handling one datagram is counted in the log and never leaves the socket's callback.
 */
export function udpMediaSockets(host: string, log: Logger): MediaSocketFactory {
  const type = isIP(host) === 6 ? 'udp6' : 'udp4';
  return async (port, receive) => {
    const socket = DgramAsPromised.createSocket({ type, reuseAddr: false }, (msg, rinfo) => {
      try {
        receive(msg, { address: rinfo.address, port: rinfo.port });
      } catch (error) {
        log.warn('media-fault', { port, error });
      }
    });
    try {
      await socket.bind(port, host);
    } catch {
      // Bound by someone else. The socket is closed all the same: each pass round the pool tries
      // that port again, and one descriptor left per try ran a router out of them (leak review F2).
      await socket.close().catch(() => undefined);
      return undefined;
    }
    socket.socket.on('error', (error) => log.debug('media-socket-error', { port, error }));
    const media: MediaSocket = {
      // The plain socket underneath: a promise per media packet (50 a second each way per call)
      // would be garbage for nothing, and a lost media datagram is only that.
      send: (bytes, to) => socket.socket.send(bytes, to.port, to.address),
      close: () => void socket.close().catch(() => undefined),
    };
    return media;
  };
}
