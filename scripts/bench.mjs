// Runs benchmarks: node scripts/bench.mjs [NAME [ARGS...]]. Each bench/NAME.ts is bundled with
// the product's esbuild settings and run with --expose-gc; it prints JSON lines.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { baseOptions } from './esbuild-options.mjs';

const [only, ...args] = process.argv.slice(2);
const names = only ? [only] : readdirSync('bench').filter((f) => f.endsWith('.ts') && !f.endsWith('-helpers.ts')).map((f) => f.slice(0, -3));
for (const name of names) {
  const outfile = `.build/bench/${name}.cjs`;
  await build({ ...baseOptions, entryPoints: [`bench/${name}.ts`], outfile });
  const r = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=8192', outfile, ...args], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
