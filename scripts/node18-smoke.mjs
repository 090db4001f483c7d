// Runs the smoke test (test/node18: three peers, two SIPp phones, a call) with the bundle on
// Node 18 for each CPU a device target ships: x86-64 natively, arm64 and armv7 under qemu-user.
// Node binaries come from the npm packages node-linux-<arch> (into .cache/node18); qemu-user-static
// and the ARM C libraries from Debian (multiarch), which .ci/run installs.
// Usage: node scripts/node18-smoke.mjs [x64] [arm64] [armv7l]     (default: all three)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

const NODES = {
  x64: { version: '18.20.8', qemu: [], scale: 1 },
  // The CPUs of a Raspberry Pi 4 and a Pi 2 (qemu's default "max" CPU emulates pointer
  // authentication, which makes Node ten times slower to start).
  arm64: { version: '18.20.8', qemu: ['qemu-aarch64-static', '-cpu', 'cortex-a72', '-L', '/'], scale: 6 },
  armv7l: { version: '18.20.4', qemu: ['qemu-arm-static', '-cpu', 'cortex-a7', '-L', '/'], scale: 6 },
};

function nodeBinary(arch) {
  const { version } = NODES[arch];
  const prefix = path.resolve('.cache', 'node18', arch);
  const binary = path.join(prefix, 'node_modules', `node-linux-${arch}`, 'bin', 'node');
  if (!existsSync(binary)) {
    mkdirSync(prefix, { recursive: true });
    // --force: npm would refuse a package for another CPU than this machine's.
    execFileSync('npm', ['install', '--prefix', prefix, '--no-save', '--no-package-lock', '--force', '--no-audit', '--no-fund', '--loglevel=error', `node-linux-${arch}@${version}`], { stdio: 'inherit' });
  }
  return binary;
}

const arches = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(NODES);
// Binaries first (npm, one at a time), then the runs side by side: emulation is the slow part.
const ready = [];
for (const arch of arches) {
  const { qemu } = NODES[arch];
  if (qemu.length && spawnSync(qemu[0], ['--version'], { stdio: 'ignore' }).error) {
    console.log(JSON.stringify({ arch, result: 'skipped', reason: `${qemu[0]} not installed (apt-get install qemu-user-static)` }));
    continue;
  }
  ready.push({ arch, node: nodeBinary(arch) });
}
const results = await Promise.all(
  ready.map(
    ({ arch, node }) =>
      new Promise((resolve) => {
        const { qemu, scale, version } = NODES[arch];
        const started = Date.now();
        const child = spawn(process.execPath, ['scripts/test.mjs', 'test/node18'], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, P2PSIP_NODE: [...qemu, node].join(' '), P2PSIP_TIME_SCALE: String(scale), P2PSIP_TEST_BUILD: `.build/test-${arch}` },
        });
        let output = '';
        child.stdout.on('data', (d) => (output += d));
        child.stderr.on('data', (d) => (output += d));
        child.on('exit', (code) => {
          const result = { arch, node: version, emulated: qemu.length > 0, result: code === 0 ? 'pass' : 'fail', seconds: Math.round((Date.now() - started) / 1000) };
          if (code !== 0) process.stdout.write(output.slice(-6000));
          console.log(JSON.stringify(result));
          resolve(result);
        });
      }),
  ),
);
process.exit(results.length === arches.length && results.every((r) => r.result === 'pass') ? 0 : 1);
