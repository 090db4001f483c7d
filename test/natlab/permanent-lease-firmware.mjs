// A home router whose firmware grants only permanent UPnP leases (as many older routers do):
// it stands in front of the router's own UPnP service (miniupnpd) on the LAN, refuses any
// AddPortMapping with a lease other than 0 with UPnP error 725 OnlyPermanentLeasesSupported
// (WANIPConnection:2 s2.4.16), and passes everything else through, so the forwards themselves are
// miniupnpd's real iptables rules.
// Usage (inside the router's namespace): node permanent-lease-firmware.mjs LISTEN_HOST LISTEN_PORT UPNP_HOST UPNP_PORT
import http from 'node:http';

const [listenHost, listenPort, upnpHost, upnpPort] = process.argv.slice(2);
const MAX_BODY = 64 * 1024;

const FAULT_725 =
  '<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><s:Fault>' +
  '<faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0">' +
  '<errorCode>725</errorCode><errorDescription>OnlyPermanentLeasesSupported</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>\r\n';

const server = http.createServer((request, response) => {
  const chunks = [];
  let size = 0;
  request.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) request.destroy();
    else chunks.push(chunk);
  });
  request.on('end', () => {
    const body = Buffer.concat(chunks);
    const action = String(request.headers.soapaction ?? '');
    const lease = /<NewLeaseDuration>\s*(\d+)\s*<\/NewLeaseDuration>/.exec(body.toString())?.[1];
    if (action.includes('#AddPortMapping') && lease !== '0') {
      console.log(`refused lease ${lease ?? 'none'}: 725 OnlyPermanentLeasesSupported`);
      response.writeHead(500, { 'Content-Type': 'text/xml; charset="utf-8"', 'Content-Length': Buffer.byteLength(FAULT_725) });
      response.end(FAULT_725);
      return;
    }
    if (action.includes('#AddPortMapping')) console.log('granted a permanent lease');
    const upstream = http.request({ host: upnpHost, port: Number(upnpPort), method: request.method, path: request.url, headers: { ...request.headers, 'content-length': body.length } }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    upstream.on('error', () => {
      response.writeHead(502);
      response.end();
    });
    upstream.end(body);
  });
});
server.listen(Number(listenPort), listenHost, () => console.log(`firmware listening on ${listenHost}:${listenPort}`));
