/*
 * UPnP IGD (WANIPConnection:1/:2, as routers implement it): find the gateway with an SSDP
 * M-SEARCH to 239.255.255.250:1900, read its device description for the WANIPConnection
 * control URL, then SOAP AddPortMapping / GetExternalIPAddress / DeletePortMapping. Only the
 * few XML elements these need are read, by name. Anything on the LAN can answer SSDP, so every
 * answer is read with bounded, linear-time code (indexOf, never a backtracking expression), and
 * the URLs it gives are used only when they point at the gateway itself.
 */
const MAX_SSDP_BYTES = 2048;
const MAX_DESCRIPTION_CHARS = 64 * 1024;
const MAX_SERVICES = 64;
export const SSDP_ADDRESS = { host: '239.255.255.250', port: 1900 };
const SEARCH_TARGET = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1';

export function ssdpSearch(): Uint8Array {
  return new TextEncoder().encode(`M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: ${SEARCH_TARGET}\r\n\r\n`);
}

/** The LOCATION of an SSDP answer, if it is one. */
export function ssdpLocation(datagram: Uint8Array): string | undefined {
  const lines = new TextDecoder().decode(datagram.subarray(0, MAX_SSDP_BYTES)).split('\n');
  if (!lines[0].toUpperCase().startsWith('HTTP/1.1 200')) return undefined;
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon < 0 || line.slice(0, colon).trim().toLowerCase() !== 'location') continue;
    const location = line.slice(colon + 1).trim();
    return location.toLowerCase().startsWith('http://') && !/\s/.test(location) ? location : undefined;
  }
  return undefined;
}

/** Whether `url` is plain HTTP to `host` (the gateway): a LAN device cannot send us elsewhere. */
export function isUrlOn(url: string, host: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' && parsed.hostname === host;
  } catch {
    return false;
  }
}

/**
 * The trimmed text of the first `<name>...</name>` at or after `from` in `xml`, found in `lower`
 * (the same text lower-cased, so tags match in any case); linear in the text's length.
 */
function elementText(xml: string, lower: string, name: string, from = 0, to = lower.length): string | undefined {
  const open = lower.indexOf(`<${name.toLowerCase()}>`, from);
  if (open < 0 || open >= to) return undefined;
  const start = open + name.length + 2;
  const end = lower.indexOf(`</${name.toLowerCase()}>`, start);
  if (end < 0 || end > to) return undefined;
  const text = xml.slice(start, end);
  return text.includes('<') ? undefined : text.trim();
}

export interface IgdService {
  readonly serviceType: string;
  readonly controlUrl: string;
}

/** The WANIPConnection (or WANPPPConnection) service in a device description. */
export function findWanService(description: string, base: string): IgdService | undefined {
  const xml = description.slice(0, MAX_DESCRIPTION_CHARS);
  const lower = xml.toLowerCase();
  let at = 0;
  for (let services = 0; services < MAX_SERVICES; services++) {
    const start = lower.indexOf('<service>', at);
    if (start < 0) return undefined;
    const end = lower.indexOf('</service>', start);
    if (end < 0) return undefined;
    const type = elementText(xml, lower, 'serviceType', start, end);
    const control = elementText(xml, lower, 'controlURL', start, end);
    if (type && control && isWanConnection(type)) {
      try {
        return { serviceType: type, controlUrl: new URL(control, base).toString() };
      } catch {
        return undefined;
      }
    }
    at = end;
  }
  return undefined;
}

/** urn:schemas-upnp-org:service:WANIPConnection:N or WANPPPConnection:N. */
function isWanConnection(type: string): boolean {
  const prefix = type.slice(0, type.lastIndexOf(':'));
  const version = type.slice(type.lastIndexOf(':') + 1);
  return /^\d$/.test(version) && (prefix.endsWith(':service:WANIPConnection') || prefix.endsWith(':service:WANPPPConnection'));
}

export function soapEnvelope(service: IgdService, action: string, args: Record<string, string | number>): string {
  const body = Object.entries(args)
    .map(([k, v]) => `<${k}>${String(v).replace(/[<>&]/g, '')}</${k}>`)
    .join('');
  return `<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:${action} xmlns:u="${service.serviceType}">${body}</u:${action}></s:Body></s:Envelope>\r\n`;
}

export function soapValue(response: string, element: string): string | undefined {
  const xml = response.slice(0, MAX_DESCRIPTION_CHARS);
  return elementText(xml, xml.toLowerCase(), element);
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
