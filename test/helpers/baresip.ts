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

export function startBaresip(dir: string, account: { user: string; domain: string; password: string; proxyPort: number }, sipPort: number): Softphone {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'config'),
    [
      'poll_method epoll',
      `sip_listen 127.0.0.1:${sipPort}`,
      'sip_transports udp',
      'audio_player aufile,/dev/null',
      'audio_source ausine,440',
      'audio_alert aufile,/dev/null',
      // ausine plays 48 kHz stereo only; baresip resamples for the 8 kHz mono call.
      'ausrc_srate 48000',
      'auplay_srate 48000',
      'ausrc_channels 2',
      'auplay_channels 2',
      'module_path /usr/lib/baresip/modules',
      'module g711.so',
      'module ausine.so',
      'module aufile.so',
      'module_app account.so',
      'module_app menu.so',
      '',
    ].join('\n'),
  );
  writeFileSync(
    path.join(dir, 'accounts'),
    `<sip:${account.user}@${account.domain}>;auth_pass=${account.password};outbound="sip:127.0.0.1:${account.proxyPort}";regint=600;answermode=auto;audio_codecs=PCMU\n`,
  );
  let output = '';
  const child = spawn('baresip', ['-f', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  return { child, output: () => output };
}
