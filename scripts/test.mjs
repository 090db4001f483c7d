// Runs the test suite with Node's own test runner. Each test/**/*.test.ts is bundled by
// esbuild (the same settings as the product) into .build/test/, then `node --test` runs them.
// Usage: node scripts/test.mjs [unit|sim|integration|natlab|targets ...]
import { build } from 'esbuild';
import { spawn } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { baseOptions } from './esbuild-options.mjs';

const groups = process.argv.slice(2);
const roots = (groups.length ? groups : ['unit', 'sim', 'integration', 'natlab', 'targets']).map((g) => (g.startsWith('test/') ? g : path.join('test', g)));

function findTests(dir) {
  if (dir.endsWith('.test.ts')) return [dir];
  let out = [];
  let entries = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries.sort()) {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) out = out.concat(findTests(file));
    else if (name.endsWith('.test.ts')) out.push(file);
  }
  return out;
}

const sources = roots.flatMap(findTests);
if (sources.length === 0) {
  console.error(`no tests found under ${roots.join(', ')}`);
  process.exit(1);
}
// P2PSIP_TEST_BUILD lets runs side by side (scripts/node18-smoke.mjs) keep apart.
const outdir = process.env.P2PSIP_TEST_BUILD ?? '.build/test';
rmSync(outdir, { recursive: true, force: true });
await build({
  ...baseOptions,
  entryPoints: sources,
  outdir,
  outbase: 'test',
  outExtension: { '.js': '.cjs' },
  sourcemap: 'inline',
  define: { 'import.meta.dirname': '__dirname' },
});
const compiled = sources.map((s) => path.join(outdir, path.relative('test', s)).replace(/\.ts$/, '.cjs'));

// Unit and simulator tests run on virtual time, so two at once cannot make them flaky; tests with
// real processes, sockets and namespaces run one at a time. Node 18's runner has no concurrency
// flag: there everything runs one file at a time.
const onVirtualTime = (file) => ['unit', 'sim'].includes(path.relative(outdir, file).split(path.sep)[0]);
const [major, minor] = process.versions.node.split('.').map(Number);
const concurrent = major > 20 || (major === 20 && minor >= 10) ? ['--test-concurrency=2'] : [];
// Files with real processes each take up to minutes: they run one per `node --test`, each
// announced first, so a long run is never silent.
const virtual = compiled.filter(onVirtualTime);
const real = compiled.filter((f) => !onVirtualTime(f));
const runs = [
  ...(virtual.length ? [{ files: virtual, flags: concurrent, title: `unit and simulator tests: ${virtual.length} files` }] : []),
  ...real.map((file, i) => ({ files: [file], flags: [], title: `${path.relative(outdir, file).replace(/\.cjs$/, '.ts')} (${i + 1} of ${real.length} with real processes)` })),
];

let passed = 0;
let failed = 0;
let skipped = 0;
for (const { files, flags, title } of runs) {
  console.log(`\n# ▶ ${title}`);
  const summary = await runTests(files, flags);
  passed += summary.passed;
  failed += summary.failed;
  skipped += summary.skipped;
}
// One closing line for the whole suite (each run above printed its own summary).
console.log(`\nsuite: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed || passed === 0 ? 1 : 0);

/** Runs `node --test` on `files`, passing its output through and reading its summary. */
function runTests(files, flags) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--enable-source-maps', '--test', ...flags, ...files], { stdio: ['ignore', 'pipe', 'inherit'] });
    let tail = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      tail = (tail + chunk.toString()).slice(-2000);
    });
    child.on('close', (code) => {
      const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(tail)?.[1] ?? 0);
      // A run that died before its summary counts as failed.
      resolve({ passed: count('pass'), failed: count('fail') + (code !== 0 && count('fail') === 0 ? 1 : 0), skipped: count('skipped') });
    });
  });
}
