import assert from 'node:assert/strict';
import { test } from 'node:test';
import { anchorSdp, nextSdpVersion, parseSdp, rtcpEndpoint, SdpError } from '../../../../src/usages/sip/media/sdp.js';

/*
 * SDP as real phones write it, read and pointed at the home peer's anchor ports (issue 16):
 * baresip's and SIPp's offers, a Linphone-style offer with ICE, rtcp and video, hold both ways,
 * a refused stream, SRTP left alone, and SDP that must be refused with 488.
 */
const sdp = (text: string) => `${text.trim().split('\n').map((l) => l.trim()).join('\r\n')}\r\n`;
const ANCHOR = '198.51.100.2';

const BARESIP = sdp(`
  v=0
  o=- 2890844526 2890844526 IN IP4 192.168.1.20
  s=-
  c=IN IP4 192.168.1.20
  t=0 0
  m=audio 10000 RTP/AVP 0 8 101
  b=AS:64
  a=rtpmap:0 PCMU/8000
  a=rtpmap:8 PCMA/8000
  a=rtpmap:101 telephone-event/8000
  a=fmtp:101 0-15
  a=sendrecv
  a=label:1
  a=ssrc:3420587461 cname:a8b3f1
  a=rtcp-rsize
  a=ptime:20
`);

const LINPHONE = sdp(`
  v=0
  o=alice 2786 1263 IN IP4 192.168.1.30
  s=Talk
  c=IN IP4 192.168.1.30
  t=0 0
  a=ice-pwd:31ec21eb38b2ec6d36e8dc7b
  a=ice-ufrag:e2f0fb8a
  a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
  m=audio 7078 RTP/AVP 96 0 8 101
  a=rtpmap:96 opus/48000/2
  a=fmtp:96 useinbandfec=1
  a=rtpmap:101 telephone-event/8000
  a=rtcp:7079
  a=candidate:1 1 UDP 2130706431 192.168.1.30 7078 typ host
  a=candidate:1 2 UDP 2130706430 192.168.1.30 7079 typ host
  a=candidate:2 1 UDP 1694498815 203.0.113.7 7078 typ srflx raddr 192.168.1.30 rport 7078
  a=rtcp-fb:* trr-int 1000
  m=video 9078 RTP/AVP 96
  c=IN IP4 192.168.1.31
  a=rtpmap:96 VP8/90000
  a=rtcp-mux
  a=sendrecv
`);

test("baresip's offer: its stream, codecs and RTCP port are read, and the anchored copy points at the peer", () => {
  const parsed = parseSdp(BARESIP);
  assert.equal(parsed.streams.length, 1);
  const [audio] = parsed.streams;
  assert.deepEqual(audio.rtp, { address: '192.168.1.20', port: 10000 });
  assert.deepEqual(audio.rtcp, { address: '192.168.1.20', port: 10001 });
  assert.equal(audio.codecs.get('0'), 'PCMU/8000');
  assert.deepEqual(audio.formats, ['0', '8', '101']);
  assert.equal(audio.direction, 'sendrecv');
  const anchored = anchorSdp(parsed, { address: ANCHOR, ports: [40000] });
  assert.match(anchored, /^o=- 2890844526 2890844527 IN IP4 198\.51\.100\.2\r\n/m, 'a new version, from the anchor');
  assert.match(anchored, /^c=IN IP4 198\.51\.100\.2\r\n/m);
  assert.match(anchored, /^m=audio 40000 RTP\/AVP 0 8 101\r\n/m);
  assert.equal(anchored.includes('192.168.1.20'), false, 'no LAN address leaves the home');
  // Everything else as baresip wrote it, in its order.
  const kept = (text: string) => text.split('\r\n').filter((l) => /^(a|b|t|s)=/.test(l));
  assert.deepEqual(kept(anchored), kept(BARESIP));
  const again = parseSdp(anchored).streams[0];
  assert.deepEqual([again.rtp, again.rtcp], [{ address: ANCHOR, port: 40000 }, { address: ANCHOR, port: 40001 }]);
});

test('a Linphone-style offer: ICE attributes go, a=rtcp names the anchor, video and rtcp-mux are kept', () => {
  const parsed = parseSdp(LINPHONE);
  const [audio, video] = parsed.streams;
  assert.deepEqual(audio.rtcp, { address: '192.168.1.30', port: 7079 });
  assert.equal(video.rtcpMux, true);
  assert.deepEqual(video.rtp, { address: '192.168.1.31', port: 9078 }, 'a section-level c= wins');
  assert.deepEqual(rtcpEndpoint(video, true), video.rtp, 'rtcp-mux in use: RTCP on the RTP port');
  assert.deepEqual(rtcpEndpoint(video, false), { address: '192.168.1.31', port: 9079 }, 'mux declined by the answer: the port above');
  const anchored = anchorSdp(parsed, { address: ANCHOR, ports: [40002, 40004] });
  assert.doesNotMatch(anchored, /a=(candidate|ice-ufrag|ice-pwd)/);
  assert.match(anchored, /a=rtcp:40003 IN IP4 198\.51\.100\.2\r\n/);
  assert.match(anchored, /m=video 40004 RTP\/AVP 96\r\nc=IN IP4 198\.51\.100\.2\r\n/);
  assert.match(anchored, /a=rtcp-mux\r\n/);
  assert.match(anchored, /a=rtcp-xr:rcvr-rtt/, 'attributes the anchor does not own are kept');
  const streams = parseSdp(anchored).streams;
  assert.ok(streams.every((s) => s.rtp.address === ANCHOR));
});

test('hold, both ways: a=sendonly, and the old c=0.0.0.0 kept so that the far phone hears of it (review M4)', () => {
  const hold = parseSdp(BARESIP.replace('a=sendrecv', 'a=sendonly'));
  assert.equal(hold.streams[0].direction, 'sendonly');
  assert.match(anchorSdp(hold, { address: ANCHOR, ports: [40000] }), /a=sendonly\r\n/);
  const old = parseSdp(BARESIP.replace('c=IN IP4 192.168.1.20', 'c=IN IP4 0.0.0.0'));
  assert.equal(old.streams[0].rtp.address, '0.0.0.0');
  const held = anchorSdp(old, { address: ANCHOR, ports: [40000], keepHold: true });
  assert.match(held, /\r\nc=IN IP4 0\.0\.0\.0\r\nt=0 0\r\nm=audio 40000 RTP\/AVP 0 8 101\r\nc=IN IP4 0\.0\.0\.0\r\n/, 'on hold at the session and the stream');
  // In a first offer it may mean "no address yet" (trickle ICE): the anchor's address goes, and latching finds the phone.
  const first = anchorSdp(old, { address: ANCHOR, ports: [40000] });
  assert.match(first, /m=audio 40000 RTP\/AVP 0 8 101\r\nc=IN IP4 198\.51\.100\.2\r\n/);
  assert.doesNotMatch(first, /0\.0\.0\.0/);
  const resumed = anchorSdp(parseSdp(BARESIP), { address: ANCHOR, ports: [40000] });
  assert.match(resumed, /m=audio 40000 RTP\/AVP 0 8 101\r\nc=IN IP4 198\.51\.100\.2\r\n/);
});

test('a stream refused at first stays refused, and no phone address goes with it: offered again later, it goes out disabled (review M3)', () => {
  const refused = parseSdp(LINPHONE.replace('m=video 9078', 'm=video 0'));
  const anchored = anchorSdp(refused, { address: ANCHOR, ports: [40002, undefined] });
  assert.match(anchored, /m=video 0 RTP\/AVP 96\r\nc=IN IP4 198\.51\.100\.2\r\n/, 'refused, its c= naming the anchor');
  assert.match(anchored, /^c=IN IP4 198\.51\.100\.2$/m, 'the session-level address names the anchor');
  assert.doesNotMatch(anchored, /192\.168\./);
  // The re-offer that turns video on: the call has no ports for it, so the far side is offered it disabled.
  const withCandidates = LINPHONE.replace('a=rtcp-mux\r\n', 'a=rtcp:9079 IN IP4 192.168.1.31\r\na=candidate:3 1 UDP 2130706431 192.168.1.31 9078 typ host\r\n');
  const reoffer = anchorSdp(parseSdp(withCandidates), { address: ANCHOR, ports: [40002, undefined] });
  assert.match(reoffer, /m=audio 40002 /);
  assert.match(reoffer, /m=video 0 RTP\/AVP 96\r\nc=IN IP4 198\.51\.100\.2\r\n/);
  assert.doesNotMatch(reoffer, /192\.168\./);
});

test('SRTP (RTP/SAVP with a=crypto) is recognised, so it can pass through untouched', () => {
  const srtp = parseSdp(BARESIP.replace('RTP/AVP', 'RTP/SAVP').replace('a=ptime:20', 'a=ptime:20\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR'));
  assert.equal(srtp.streams[0].secure, true);
  assert.equal(parseSdp(BARESIP).streams[0].secure, false);
});

test('SDP that cannot be read is refused with 488 and a reason, never half-read', () => {
  const bad = [
    ['not SDP at all', 'v=0'],
    [BARESIP.replace('v=0', 'v=1'), 'v=0'],
    [BARESIP.replace('m=audio 10000 RTP/AVP', 'm=audio ten RTP/AVP'), 'media line'],
    [BARESIP.replace('m=audio 10000', 'm=audio 70000'), 'media line'],
    [BARESIP.replace('c=IN IP4 192.168.1.20', 'c=IN IP4 224.2.1.1/127'), 'connection'],
    [BARESIP.replace('c=IN IP4 192.168.1.20\r\n', ''), 'no connection address'],
    [BARESIP.replace('a=sendrecv', 'this is not a line'), 'type=value'],
    [BARESIP.replace(/o=[^\r]*/, 'o=- x y'), 'o= line'],
    [`${BARESIP}${'a=x\r\n'.repeat(5000)}`, 'too large'],
    [BARESIP.replace('a=ptime:20', 'a=rtcp:port'), 'a=rtcp'],
    // A lone CR: a phone that ends lines at it would read a c= the anchor never rewrote (review F5).
    [BARESIP.replace('a=ptime:20', 'a=ptime:20\ra=x\rc=IN IP4 198.51.100.66'), 'control character'],
    [BARESIP.replace('a=ptime:20', 'a=ptime:20\u0000'), 'control character'],
    // An origin after the first m= would go on unrewritten, with the phone's address (fuzz review F3).
    [`${BARESIP.replace(/o=[^\r]*\r\n/, '')}o=- 1 1 IN IP4 192.168.1.20\r\n`, 'inside a media section'],
    [BARESIP.replace(/o=(\S+ \S+) \d+/, 'o=$1 12345678901234567890'), 'o= line'],
  ] as const;
  for (const [text, reason] of bad) {
    assert.throws(() => parseSdp(text), (e: unknown) => e instanceof SdpError && e.status === 488 && e.reason.includes(reason), `${reason}`);
  }
});

test('the o= version the anchor sends on is always one it would read: past 19 digits it wraps to 0 (fuzz review F3)', () => {
  const highest = BARESIP.replace(/o=(\S+ \S+) \d+/, 'o=$1 9999999999999999999');
  const anchored = anchorSdp(parseSdp(highest), { address: '203.0.113.1', ports: [40000] });
  assert.match(anchored, /^o=\S+ \S+ 0 IN IP4 203\.0\.113\.1$/m);
  assert.doesNotThrow(() => parseSdp(anchored));
  assert.equal(nextSdpVersion(41n), 42n);
});
