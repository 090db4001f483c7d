// Shared esbuild settings: Node 18 baseline, one CommonJS file, cbor-x's pure-JS entry
// (its Node entry would reach for the optional native cbor-extract).
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const cborPure = path.join(path.dirname(require.resolve('cbor-x/package.json')), 'index.js');

export const baseOptions = {
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  alias: { 'cbor-x': cborPure },
  logLevel: 'warning',
  legalComments: 'none',
};
