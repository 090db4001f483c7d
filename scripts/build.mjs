// Builds dist/p2psip.js: one minified CommonJS bundle for Node 18 and later.
import { build } from 'esbuild';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { baseOptions } from './esbuild-options.mjs';

const BUDGET_BYTES = 300 * 1024;
mkdirSync('dist', { recursive: true });
const result = await build({
  ...baseOptions,
  entryPoints: ['src/cli/entry.ts'],
  outfile: 'dist/p2psip.js',
  minify: true,
  metafile: true,
  banner: { js: '#!/usr/bin/env node' },
});
writeFileSync('dist/meta.json', JSON.stringify(result.metafile));
const size = statSync('dist/p2psip.js').size;
console.log(`dist/p2psip.js ${(size / 1024).toFixed(1)} KB (budget ${BUDGET_BYTES / 1024} KB)`);
if (size > BUDGET_BYTES) {
  console.error('bundle over budget: inspect dist/meta.json');
  process.exit(1);
}
