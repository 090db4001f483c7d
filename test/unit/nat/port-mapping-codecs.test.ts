import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodePmpAnswer, pmpExternal, pmpMapRequest } from '../../../src/nat/port-mapping/nat-pmp.js';
import { decodePcpAnswer, pcpMapRequest } from '../../../src/nat/port-mapping/pcp.js';
import { findWanService, isUrlOn, soapEnvelope, soapValue, ssdpLocation } from '../../../src/nat/port-mapping/upnp-igd.js';
import { defaultGateway } from '../../../src/node/port-mapping-io.js';

/*
 * The port-mapping wire formats, byte for byte as RFC 6887 and RFC 6886 lay them out, and the
 * bits of UPnP IGD we read. (miniupnpd answers them for real in test/natlab/port-mapping.)
 */
test('PCP MAP: a 60-byte request with our address IPv4-mapped, and the assigned port read back', () => {
  const nonce = new Uint8Array(12).fill(7);
  const request = pcpMapRequest('198.19.1.2', nonce, 6084, 6084, 3600);
  assert.equal(request.length, 60);
  assert.equal(Buffer.from(request.subarray(0, 8)).toString('hex'), '0201000000000e10');
  assert.equal(Buffer.from(request.subarray(8, 24)).toString('hex'), '00000000000000000000ffffc6130102');
  assert.equal(request[36], 17);
  const answer = new Uint8Array(request);
  answer[1] |= 0x80;
  answer[3] = 0;
  answer.set([0xc6, 0x12, 0x00, 0x0b], 56); // 198.18.0.11
  answer.set([0x17, 0xc5], 42); // port 6085
  const decoded = decodePcpAnswer(answer)!;
  assert.deepEqual(decoded.external, { host: '198.18.0.11', port: 6085 });
  assert.equal(decoded.lifetimeSeconds, 3600);
  assert.equal(decodePcpAnswer(new Uint8Array([0, 0x81, 0, 1]))!.version, 0, 'a NAT-PMP-only gateway says so');
});

test('NAT-PMP: map request and answers; a failed result gives no address', () => {
  assert.equal(Buffer.from(pmpMapRequest(6084, 6084, 7200)).toString('hex'), '0001000017c417c400001c20');
  const address = decodePmpAnswer(Buffer.from('008000000000000ac612000b', 'hex'));
  const map = decodePmpAnswer(Buffer.from('008100000000000a17c417c400001c20', 'hex'));
  assert.deepEqual(pmpExternal(address, map), { host: '198.18.0.11', port: 6084 });
  const refused = decodePmpAnswer(Buffer.from('008100030000000417c417c400000078', 'hex'));
  assert.equal(pmpExternal(address, refused), undefined);
  assert.equal(decodePmpAnswer(new Uint8Array([1, 2, 3])), undefined);
});

test('UPnP IGD: SSDP LOCATION, the WANIPConnection control URL, SOAP in and out', () => {
  const ssdp = new TextEncoder().encode('HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLOCATION: http://198.19.1.1:45687/rootDesc.xml\r\n\r\n');
  assert.equal(ssdpLocation(ssdp), 'http://198.19.1.1:45687/rootDesc.xml');
  assert.equal(ssdpLocation(new TextEncoder().encode('NOTIFY * HTTP/1.1\r\n\r\n')), undefined);
  const description = '<root><device><serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType><controlURL>/ctl/L3F</controlURL></service><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><controlURL>/ctl/IPConn</controlURL></service></serviceList></device></root>';
  const service = findWanService(description, 'http://198.19.1.1:45687/rootDesc.xml')!;
  assert.deepEqual(service, { serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:2', controlUrl: 'http://198.19.1.1:45687/ctl/IPConn' });
  assert.match(soapEnvelope(service, 'GetExternalIPAddress', {}), /<u:GetExternalIPAddress xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:2"><\/u:GetExternalIPAddress>/);
  assert.equal(soapValue('<s:Body><u:R><NewExternalIPAddress>198.18.0.11</NewExternalIPAddress></u:R></s:Body>', 'NewExternalIPAddress'), '198.18.0.11');
});

test('the default gateway is read from the kernel routing table when there is one', () => {
  const gateway = defaultGateway();
  assert.ok(gateway === undefined || /^\d+\.\d+\.\d+\.\d+$/.test(gateway), String(gateway));
});

test('a hostile LAN device: 64 KiB device descriptions and SOAP answers built to make regular expressions backtrack are read in linear time', () => {
  const hostile = [
    `<service><serviceType>${' '.repeat(64 * 1024)}`,
    `<service><serviceType>urn:x${' '.repeat(32 * 1024)}x</serviceType><controlURL>${' '.repeat(32 * 1024)}`,
    '<service>'.repeat(7000),
    `<root>${'<serviceType> a'.repeat(5000)}`,
  ];
  for (const description of hostile) {
    const started = performance.now();
    assert.equal(findWanService(description, 'http://198.19.1.1/rootDesc.xml'), undefined);
    soapValue(description, 'controlURL');
    const ms = performance.now() - started;
    assert.ok(ms < 50, `${description.length} characters took ${ms.toFixed(1)} ms`);
  }
  const ssdp = new TextEncoder().encode(`HTTP/1.1 200 OK\r\nLOCATION:${' '.repeat(2000)}\r\n`);
  assert.equal(ssdpLocation(ssdp), undefined);
  assert.equal(soapValue('<NewExternalIPAddress>   198.18.0.11   </NewExternalIPAddress>', 'NewExternalIPAddress'), '198.18.0.11');
});

test('UPnP URLs are used only when they are plain HTTP to the gateway itself', () => {
  assert.equal(isUrlOn('http://198.19.1.1:45687/rootDesc.xml', '198.19.1.1'), true);
  assert.equal(isUrlOn('http://169.254.169.254/latest/meta-data', '198.19.1.1'), false);
  assert.equal(isUrlOn('https://198.19.1.1/x', '198.19.1.1'), false);
  assert.equal(isUrlOn('http://198.19.1.1.evil.example/x', '198.19.1.1'), false);
  assert.equal(isUrlOn('not a url', '198.19.1.1'), false);
  // A description whose control URL is absolute and elsewhere is found, and then refused by isUrlOn.
  const service = findWanService('<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>http://10.0.0.5/steal</controlURL></service>', 'http://198.19.1.1/d.xml')!;
  assert.equal(isUrlOn(service.controlUrl, '198.19.1.1'), false);
});
