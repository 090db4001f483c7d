import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { SKIP_WITHOUT_BARESIP, startBaresip } from '../helpers/baresip.js';
import { eventually, freeUdpPort, processLab, runCli } from '../helpers/processes.js';

/*
 * The README's "A family's first hour" and lab blocks, run line by line as a reader pastes them
 * (in a scratch directory with the built dist/ beside it): a line ending in & starts a peer and
 * the next line waits until that peer has joined, as a person would; the second home's line gets
 * the token the invite line printed in place of `p2psip1:...`. Then Debian's baresip registers as
 * alice's phone to the first home's peer on its default settings. The peers are stopped when the
 * file's tests end.
 */
const { root, running } = processLab('p2psip-readme-');
const README = readFileSync('README.md', 'utf8');

/** The command lines of the README's sh blocks under one heading (up to the next heading of any level). */
function blockLines(heading: string): string[] {
  const start = README.indexOf(heading);
  const next = README.slice(start + heading.length).search(/\n#{2,3} /);
  const section = README.slice(start, next < 0 ? undefined : start + heading.length + next);
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
  return blocks.flatMap((b) => b.split('\n')).map((line) => line.replace(/\s+#.*$/, '').trim()).filter(Boolean);
}

const dataDir = (line: string) => /--data (\S+)/.exec(line)?.[1];
const status = (dir: string) => {
  const run = runCli(['status', '--data', path.join(root, dir), '--json']);
  return run.code === 0 ? JSON.parse(run.stdout) : {};
};

test('every line of the README\'s family and lab blocks works as written, in order', { timeout: 180_000 }, async () => {
  symlinkSync(path.resolve('dist'), path.join(root, 'dist'));
  let token: string | undefined;
  const lines = blockLines("## A family's first hour");
  assert.ok(lines.length >= 10, `the blocks were found: ${lines.length} lines`);
  for (const written of lines) {
    if (written.startsWith('npm run build')) continue; // the bundle the suite already built
    const line = written.replace('p2psip1:...', () => {
      assert.ok(token, 'an invite line printed a token before it is needed');
      return token!;
    });
    if (line.endsWith('&')) {
      const child = spawn('bash', ['-c', `exec ${line.slice(0, -1)}`], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
      running.push({ child, output: [], exited: new Promise((resolve) => child.once('exit', resolve)) });
      const dir = dataDir(line)!;
      assert.ok(await eventually(() => status(dir).state === 'joined', 30_000), `${written}\n  did not come up: ${output}`);
      continue;
    }
    const run = spawnSync('bash', ['-c', line], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    assert.equal(run.status, 0, `${written}\n  exit ${run.status}: ${run.stderr}${run.stdout}`);
    token = /p2psip1:[A-Za-z0-9_-]+/.exec(run.stdout)?.[0] ?? token;
  }
  // What the lines say happened, happened.
  const bob = JSON.parse(runCli(['user', 'list', '--data', path.join(root, 'var/joneses'), '--json']).stdout).users[0];
  assert.equal(bob.certificate.state, 'issued', JSON.stringify(bob));
  assert.equal(status('var/b').successors[0]?.id, status('var/a').nodeId, 'the lab peers form one ring');
});

test("then Debian's baresip registers as alice's phone to the first home's peer on its defaults", { skip: SKIP_WITHOUT_BARESIP }, async () => {
  const phone = startBaresip(path.join(root, 'baresip'), { user: 'alice', domain: 'smiths.example', password: 'alice-secret', proxyPort: 5060 }, await freeUdpPort());
  try {
    assert.ok(await eventually(() => status('var/smiths').sip?.bindings === 1, 15_000), `baresip registered: ${phone.output().slice(-1500)}`);
  } finally {
    phone.child.kill('SIGKILL');
  }
});
