import { after } from 'node:test';
import { BUNDLE, ensureBundle, removeDir, runCli, tempDir } from '../helpers/processes.js';
import { NatLab } from './lab.js';

/** A NAT lab and a scratch directory for one test file, both gone when the file's tests end. */
export function natlabFixture(tag: string, prefix: string): { lab: NatLab; root: string; bundle: string } {
  ensureBundle();
  const lab = new NatLab(`${process.pid}${tag}`);
  const root = tempDir(prefix);
  after(async () => {
    await lab.teardown();
    removeDir(root);
  });
  return { lab, root, bundle: BUNDLE };
}

/** A running peer's `status --json`, or {} while it does not answer yet. */
export function peerStatus(dir: string): Record<string, any> {
  const result = runCli(['status', '--data', dir, '--json']);
  return result.code === 0 ? JSON.parse(result.stdout) : {};
}
