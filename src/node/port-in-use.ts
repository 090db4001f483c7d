import { P2psipError } from '../runtime/errors.js';

/** A port this peer needs is taken (another p2psip on the same machine, a SIP server, ...). */
export class PortInUse extends P2psipError {
  override readonly name = 'PortInUse';
}

/**
 * Binds with `open`; if the port is taken, fails with one line that says which port, what wanted
 * it and the flag that picks another (the README's two peers on one machine need two of each).
 */
export async function bindOrExplain<T>(open: () => Promise<T>, host: string, port: number, what: string, flag: string): Promise<T> {
  try {
    return await open();
  } catch (error) {
    if ((error as { code?: string }).code !== 'EADDRINUSE') throw error;
    throw new PortInUse(`port ${port} on ${host} is already in use: ${what} needs it; pick another with ${flag} PORT (0 takes any free one)`);
  }
}
