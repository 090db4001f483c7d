// What the bundle holds, by layer: node scripts/bundle-report.mjs [dist/NAME.js] [--json]
// Reads the metafile the build writes beside the bundle (scripts/build.mjs) and prints the bytes
// each folder of src/ and each npm package takes in the minified output, largest first.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const bundle = args.find((a) => !a.startsWith('--')) ?? 'dist/p2psip.js';
const meta = JSON.parse(readFileSync(`${bundle}.meta.json`, 'utf8'));
const [output] = Object.values(meta.outputs);

/** src/overlay/router.ts -> src/overlay; src/usages/sip/media/sdp.ts -> src/usages/sip/media (each usage's parts apart); node_modules/cbor-x/decode.js -> cbor-x. */
function area(file) {
  const parts = file.split('/');
  if (parts[0] === 'node_modules') return parts[1].startsWith('@') ? `${parts[1]}/${parts[2]}` : parts[1];
  if (parts[1] === 'usages') return parts.slice(0, Math.min(4, parts.length - 1)).join('/');
  return parts.slice(0, Math.min(2, parts.length - 1)).join('/');
}

const bytes = new Map();
for (const [file, input] of Object.entries(output.inputs)) bytes.set(area(file), (bytes.get(area(file)) ?? 0) + input.bytesInOutput);
const rows = [...bytes].sort((a, b) => b[1] - a[1]);
const total = output.bytes;
if (args.includes('--json')) {
  console.log(JSON.stringify({ bundle, bytes: total, areas: Object.fromEntries(rows) }));
} else {
  const kb = (n) => (n / 1024).toFixed(1).padStart(6);
  for (const [name, n] of rows) console.log(`${kb(n)} KB  ${((100 * n) / total).toFixed(1).padStart(4)}%  ${name}`);
  console.log(`${kb(total)} KB        ${bundle} (the rest: esbuild's module glue)`);
}
