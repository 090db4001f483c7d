import { createHmac } from 'node:crypto';
import { textEqualInConstantTime } from '../../../runtime/constant-time.js';
import { formatNameAddr, parseNameAddr } from '../message/name-addr.js';
import type { SipFlow } from '../transport/sip-transport.js';

/*
 * Flow tokens (the idea of RFC 5626 s5.2 and Kamailio's contact alias): a phone behind a NAT
 * can only be reached over the flow its messages came in on, whatever its Contact says (a
 * private address, a port its NAT does not map, a URI without the user it registered). So the
 * Contact of what such a phone sends through us gets `;p2p-flow=TOKEN`, and a request whose
 * Request-URI carries one goes back over that flow. The token names the flow and carries a MAC,
 * so nobody can make us send into another phone's connection with a token of their own making.
 * A token also says whether the flow is a phone of this home's (registered, or its sender proved
 * a user here) or only someone's TCP connection (the one way back to it): only the first kind
 * counts as a phone of ours for who may reach it.
 */
export const FLOW_PARAM = 'p2p-flow';

/** The flow a token names, and whether it is a phone of this home's. */
export interface MarkedFlow {
  readonly flow: SipFlow;
  readonly ours: boolean;
}

export class FlowTokens {
  constructor(private readonly secret: Uint8Array) {}

  encode(flow: SipFlow, ours = true): string | undefined {
    if (flow.transport === 'OVERLAY') return undefined;
    const path = flow.transport === 'TCP' ? `t~${flow.connectionId}~${flow.remote.host}~${flow.remote.port}` : `u~${flow.remote.host}~${flow.remote.port}`;
    const body = ours ? path : `s~${path}`;
    return `${body}~${this.mac(body)}`.replace(/:/g, '-'); // IPv6 colons are not allowed bare in a URI parameter
  }

  decode(token: string): MarkedFlow | undefined {
    const parts = token.replace(/-/g, ':').split('~');
    const mac = parts.pop();
    const body = parts.join('~');
    if (!mac || !textEqualInConstantTime(mac, this.mac(body))) return undefined;
    const ours = parts[0] !== 's';
    if (!ours) parts.shift();
    if (parts[0] === 't' && parts.length === 4) return { flow: { transport: 'TCP', connectionId: Number(parts[1]), remote: { host: parts[2], port: Number(parts[3]) } }, ours };
    if (parts[0] === 'u' && parts.length === 3) return { flow: { transport: 'UDP', remote: { host: parts[1], port: Number(parts[2]) } }, ours };
    return undefined;
  }

  /** Each Contact with the token of the flow it came over (values that cannot be read are left alone). */
  markContacts(contacts: readonly string[], flow: SipFlow, ours = true): string[] | undefined {
    const token = this.encode(flow, ours);
    if (!token) return undefined;
    return contacts.map((value) => {
      try {
        const contact = parseNameAddr(value);
        if (contact.uri === '*' || contact.uri.includes(`;${FLOW_PARAM}=`)) return value;
        const q = contact.uri.indexOf('?');
        const uri = q < 0 ? `${contact.uri};${FLOW_PARAM}=${token}` : `${contact.uri.slice(0, q)};${FLOW_PARAM}=${token}${contact.uri.slice(q)}`;
        return formatNameAddr({ ...contact, uri });
      } catch {
        return value;
      }
    });
  }

  private mac(body: string): string {
    return createHmac('sha256', this.secret).update(body).digest('base64url').slice(0, 12).replace(/-/g, '.');
  }
}
