import assert from 'node:assert/strict';
import { test } from 'node:test';
import { processLab } from '../helpers/processes.js';
import { SKIP_WITHOUT_SIPP } from '../helpers/sipp.js';
import { homeWithAliceAndBob } from '../helpers/sip-homes.js';

/*
 * `--media-anchor always`: a call between two phones of one home goes through the home peer's
 * anchor too. SIPp phones check that each is told only the anchor's ports, through a hold and a
 * resume by re-INVITE from the caller; the ports are freed after the BYE.
 */
const { root, running } = processLab('p2psip-media-home-');
const domain = 'open.p2psip.lab';

test('with --media-anchor always, alice holds and resumes a call to bob at the same home, every SDP naming the anchor', { skip: SKIP_WITHOUT_SIPP }, async () => {
  const home = await homeWithAliceAndBob(root, running, domain, 'home', ['--media-anchor', 'always']);
  assert.equal(home.sip().media.mode, 'always', 'the peer anchors every call');
  const bob = home.bobWaits('uas-hold.xml', {}, 30);
  const alice = home.call('uac-hold.xml', {}, 20);
  assert.equal(alice.code, 0, alice.errors);
  const callee = await bob.done;
  assert.equal(callee.code, 0, callee.errors);
  const media = home.sip().media;
  assert.equal(media.anchored, 1, 'the call was anchored');
  assert.equal(media.active, 0);
  assert.equal(media.portsInUse, 0, 'the BYE freed its ports');
});
