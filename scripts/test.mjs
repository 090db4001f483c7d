// Runs the test suite with Node's own test runner. Each test/**/*.test.ts is bundled by
// esbuild (the same settings as the product) into .build/test/, then `node --test` runs them.
// Usage: node scripts/test.mjs [unit|sim|integration|natlab|targets ...]
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
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
const result = spawnSync(process.execPath, ['--enable-source-maps', '--test', ...compiled], { stdio: 'inherit' });
process.exit(result.status ?? 1);
