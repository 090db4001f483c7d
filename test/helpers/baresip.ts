import { reapOnExit } from './reaper.js';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * baresip (Debian's baresip-core), a softphone nobody here wrote, run headless: no sound card
 * (a sine wave in, nothing out), one account registered through a given SIP proxy, answering
 * every call by itself.
 */
export const HAS_BARESIP = spawnSync('baresip', ['-h'], { encoding: 'utf8' }).error === undefined;
export const SKIP_WITHOUT_BARESIP = HAS_BARESIP ? false : 'baresip not installed (.ci/run installs baresip-core)';

export interface Softphone {
  readonly child: ChildProcess;
  readonly output: () => string;
}

export interface PhoneAudio {
  /** The tone this phone sends (Hz): each phone of a test its own, so a recording shows whose audio it is. */
  readonly toneHz?: number;
  /** Records what the phone receives (and sends) as WAV files here (baresip's sndfile module). */
  readonly recordDir?: string;
  /** The address the phone listens on (its host in the NAT lab); loopback by default. */
  readonly host?: string;
  /** The home peer's SIP address, when not on loopback. */
  readonly proxyHost?: string;
  /** Offers and accepts RTCP on the RTP port (RFC 5761), as baresip's rtcp_mux setting does; off by default. */
  readonly rtcpMux?: boolean;
  /** Prints what the far phone's RTCP reports said when a call ends (baresip's rtcpsummary module). */
  readonly rtcpSummary?: boolean;
  /** Starts the process (inside a NAT lab namespace, say); a plain local process by default. */
  readonly spawnWith?: (command: string, args: string[]) => ChildProcess;
}

/** Sends a baresip command (`/dial sip:...`, `/hangup`) to a phone started with commands on stdin. */
export function phoneCommand(phone: Softphone, command: string): void {
  phone.child.stdin?.write(`${command}\n`);
}

export function startBaresip(dir: string, account: { user: string; domain: string; password: string; proxyPort: number }, sipPort: number, audio: PhoneAudio = {}): Softphone {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'config'),
    [
      'poll_method epoll',
      `sip_listen ${audio.host ?? '127.0.0.1'}:${sipPort}`,
      'sip_transports udp',
      'audio_player aufile,/dev/null',
      `audio_source ausine,${audio.toneHz ?? 440}`,
      'audio_alert aufile,/dev/null',
      // ausine plays 48 kHz stereo only; baresip resamples for the 8 kHz mono call.
      'ausrc_srate 48000',
      'auplay_srate 48000',
      'ausrc_channels 2',
      'auplay_channels 2',
      `rtcp_mux ${audio.rtcpMux ? 'yes' : 'no'}`,
      'module_path /usr/lib/baresip/modules',
      'module g711.so',
      'module ausine.so',
      'module aufile.so',
      ...(audio.recordDir ? ['module sndfile.so', `snd_path ${audio.recordDir}`] : []),
      ...(audio.rtcpSummary ? ['module rtcpsummary.so'] : []),
      'module stdio.so',
      'module_app account.so',
      'module_app menu.so',
      '',
    ].join('\n'),
  );
  writeFileSync(
    path.join(dir, 'accounts'),
    `<sip:${account.user}@${account.domain}>;auth_pass=${account.password};outbound="sip:${audio.proxyHost ?? '127.0.0.1'}:${account.proxyPort}";regint=600;answermode=auto;audio_codecs=PCMU\n`,
  );
  let output = '';
  if (audio.recordDir) mkdirSync(audio.recordDir, { recursive: true });
  const child = reapOnExit(audio.spawnWith ? audio.spawnWith('baresip', ['-f', dir]) : spawn('baresip', ['-f', dir], { stdio: ['pipe', 'pipe', 'pipe'] }));
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  return { child, output: () => output };
}
