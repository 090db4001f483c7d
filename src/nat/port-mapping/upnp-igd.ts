/*
 * UPnP IGD (WANIPConnection:1/:2, as routers implement it): find the gateway with an SSDP
 * M-SEARCH to 239.255.255.250:1900, read its device description for the WANIPConnection
 * control URL, then SOAP AddPortMapping / GetExternalIPAddress / DeletePortMapping. Only the
 * few XML elements these need are read, by name.
 */
export const SSDP_ADDRESS = { host: '239.255.255.250', port: 1900 };
const SEARCH_TARGET = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1';

export function ssdpSearch(): Uint8Array {
  return new TextEncoder().encode(`M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: ${SEARCH_TARGET}\r\n\r\n`);
}

/** The LOCATION of an SSDP answer, if it is one. */
export function ssdpLocation(datagram: Uint8Array): string | undefined {
  const text = new TextDecoder().decode(datagram.subarray(0, 2048));
  if (!/^HTTP\/1\.1 200/i.test(text)) return undefined;
  const location = /^location:\s*(\S+)\s*$/im.exec(text)?.[1];
  return location && /^http:\/\//i.test(location) ? location : undefined;
}

export interface IgdService {
  readonly serviceType: string;
  readonly controlUrl: string;
}

/** The WANIPConnection (or WANPPPConnection) service in a device description. */
export function findWanService(description: string, base: string): IgdService | undefined {
  for (const block of description.split(/<service>/i).slice(1)) {
    const type = /<serviceType>\s*([^<]+?)\s*<\/serviceType>/i.exec(block)?.[1];
    const control = /<controlURL>\s*([^<]+?)\s*<\/controlURL>/i.exec(block)?.[1];
    if (type && control && /:service:WAN(IP|PPP)Connection:\d$/.test(type)) return { serviceType: type, controlUrl: new URL(control, base).toString() };
  }
  return undefined;
}

export function soapEnvelope(service: IgdService, action: string, args: Record<string, string | number>): string {
  const body = Object.entries(args)
    .map(([k, v]) => `<${k}>${String(v).replace(/[<>&]/g, '')}</${k}>`)
    .join('');
  return `<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:${action} xmlns:u="${service.serviceType}">${body}</u:${action}></s:Body></s:Envelope>\r\n`;
}

export function soapValue(response: string, element: string): string | undefined {
  return new RegExp(`<${element}>\\s*([^<]*?)\\s*</${element}>`, 'i').exec(response)?.[1];
}

export function addPortMappingArgs(externalPort: number, internalPort: number, internalClient: string, leaseSeconds: number): Record<string, string | number> {
  return {
    NewRemoteHost: '',
    NewExternalPort: externalPort,
    NewProtocol: 'UDP',
    NewInternalPort: internalPort,
    NewInternalClient: internalClient,
    NewEnabled: 1,
    NewPortMappingDescription: 'p2psip',
    NewLeaseDuration: leaseSeconds,
  };
}
