import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { removeDir, tempDir } from '../helpers/processes.js';

/*
 * scripts/internal-names.mjs decides which member names the product bundle shortens. A small
 * program holds one case of each rule: names that leave or enter it by name (JSON, a dictionary,
 * a decoded value, Node's options, a generic filled from outside or serializing its T, a wider
 * class serialized as its interface, a callback that serializes what it is given, an object
 * literal's method seen by Object.keys, keyof, for-in, a type predicate, a string key, the docs, a
 * union with a dictionary) and names no one outside sees (private state, a placeholder cast, a
 * destructured member, a bound function's this, a tagged union's fields, a literal with no type of
 * its own handed to one of ours, words of a --flag, a path or a table's prose in the docs). The first stay whole, the second shrink,
 * and the program prints the same with and without the shortening.
 */
const root = tempDir('p2psip-names-');
after(() => removeDir(root));

const PROGRAM = `
import { mkdirSync } from 'node:fs';

class Counter {
  private tally = 0;
  bump(): number { return ++this.tally; }
}
interface Report { reportedField: number; reportedNested: { nestedField: string } }
interface Counts { dictField: number }
interface Decoded { decodedField: string }
interface Arrived { arrivedField: string }
interface MakeDirectory { recursive: boolean; ourExtra: number }
interface Loaded { loadedField: number }
interface Keyed { keyedField: number; otherKeyed: number }
interface Walked { walkedField: number }
interface Checked { checkedField: string }
interface Quoted { quotedName: number }
interface Documented { docName: number }
interface Secret { secretField: number }
interface Deep { deepField: number }
interface Inner { innerOnly: Deep; innerToo: number }
interface Holder { heldField: number; read(): number }
interface Dumped { dumpedField: number }
interface Narrow { narrowField: number }
class Wide implements Narrow { narrowField = 14; wideOnly = 15; }
interface Called { calledField: number }
interface WithMethod { methodKey(): number }
type Tagged = { tag: 'one'; unionField: number } | { tag: 'two'; otherUnionField: string };
type Loose = { looseField: number } | Record<string, number>;
interface Limits { noContextField: number }
interface Worded { anchor: number; pathword: number; betweenWord: number }

function read<T>(text: string): T { return JSON.parse(text) as T; }
function pick(keyed: Keyed, key: keyof Keyed): number { return keyed[key]; }
function isChecked(value: unknown): value is Checked { return typeof value === 'object' && value !== null; }
function dump<T>(value: T): string { return JSON.stringify(value); }
function dictionary(counts: Counts): Record<string, number> { return { ...counts }; }

const out: unknown[] = [];
const counter = new Counter();
counter.bump();
out.push(counter.bump());
const report: Report = { reportedField: 1, reportedNested: { nestedField: 'n' } };
out.push(JSON.stringify(report));
out.push(JSON.stringify(dictionary({ dictField: 2 })));
out.push((JSON.parse('{"decodedField":"d"}') as Decoded).decodedField);
const arrived: Arrived = JSON.parse('{"arrivedField":"a"}');
out.push(arrived.arrivedField);
const options: MakeDirectory = { recursive: true, ourExtra: 3 };
mkdirSync(process.argv[2] + '/a/b', options);
out.push(options.ourExtra);
out.push(read<Loaded>('{"loadedField":4}').loadedField);
out.push(pick({ keyedField: 5, otherKeyed: 6 }, process.argv[3] as keyof Keyed));
const walked: Walked = { walkedField: 7 };
for (const key in walked) out.push(key);
const raw: unknown = JSON.parse('{"checkedField":"c"}');
if (isChecked(raw)) out.push(raw.checkedField);
const quoted: Quoted = { quotedName: 8 };
out.push(quoted['quotedName']);
const documented: Documented = { docName: 9 };
out.push(Object.keys(documented).length, documented.docName);
let secret = undefined as unknown as Secret;
secret = { secretField: 10 };
out.push(secret.secretField);
const inner: Inner = { innerOnly: { deepField: 11 }, innerToo: 12 };
const { innerOnly } = inner;
out.push(innerOnly.deepField + inner.innerToo);
const holder: Holder = { heldField: 13, read() { return this.heldField; } };
out.push(holder.read.bind(holder)());
out.push(dump<Dumped>({ dumpedField: 16 }));
const narrow: Narrow = new Wide();
out.push(JSON.stringify(narrow));
const call: (value: Called) => void = (value: unknown) => out.push(JSON.stringify(value));
call({ calledField: 17 });
const withMethod: WithMethod = { methodKey() { return 18; } };
out.push(Object.keys(withMethod).join(), withMethod.methodKey());
const tagged: Tagged = Number(process.argv[3].length) > 0 ? { tag: 'one', unionField: 19 } : { tag: 'two', otherUnionField: 'x' };
if (tagged.tag === 'one') out.push(tagged.unionField);
const loose: Loose = { looseField: 20 };
out.push(JSON.stringify(loose));
const limits = { noContextField: 21 };
const useLimits = (given: Limits) => given.noContextField;
out.push(useLimits(limits));
const sent = { sentField: 22 };
out.push(JSON.stringify(sent));
const worded: Worded = { anchor: 1, pathword: 2, betweenWord: 3 };
out.push(worded.anchor + worded.pathword + worded.betweenWord);
console.log(JSON.stringify(out));
`;

const SHRINK = ['tally', 'bump', 'ourExtra', 'secretField', 'innerOnly', 'deepField', 'innerToo', 'heldField', 'read', 'unionField', 'otherUnionField', 'noContextField', 'anchor', 'pathword', 'betweenWord'];
const WHOLE = ['reportedField', 'reportedNested', 'nestedField', 'dictField', 'decodedField', 'arrivedField', 'recursive', 'loadedField', 'keyedField', 'otherKeyed', 'walkedField', 'checkedField', 'quotedName', 'docName', 'dumpedField', 'narrowField', 'wideOnly', 'calledField', 'methodKey', 'looseField', 'sentField'];

function writeProgram(): void {
  mkdirSync(path.join(root, 'src'), { recursive: true });
  mkdirSync(path.join(root, 'docs'), { recursive: true });
  writeFileSync(path.join(root, 'src/main.ts'), PROGRAM);
  // Flags, paths and the prose between two cells of a table name no member.
  writeFileSync(path.join(root, 'docs/fields.md'), 'The `docName` field. Run `names start --anchor` or `--anchor`; see `test/unit/pathword.test.ts`.\n\n| `a` | the betweenWord | `b` |\n');
  writeFileSync(path.join(root, 'README.md'), 'A test program.\n');
  writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'names-case', dependencies: {} }));
  writeFileSync(path.join(root, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'ESNext', moduleResolution: 'Bundler', strict: true, types: ['node'], noEmit: true }, include: ['src'] }));
  symlinkSync(path.resolve('node_modules'), path.join(root, 'node_modules'));
}

/** Builds the program as the product is built, with or without the shortening, and runs it. */
const BUILD_AND_RUN = `
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { baseOptions } from ${JSON.stringify(path.resolve('scripts/esbuild-options.mjs'))};
import { internalNamesPattern } from ${JSON.stringify(path.resolve('scripts/internal-names.mjs'))};
const [root, shorten] = process.argv.slice(1);
const names = internalNamesPattern(root);
const outfile = root + '/out-' + shorten + '.cjs';
await build({ ...baseOptions, minify: true, ...(shorten === 'yes' ? { mangleProps: names.pattern } : {}), entryPoints: [root + '/src/main.ts'], outfile });
const output = execFileSync(process.execPath, [outfile, mkdtempSync(root + '/dirs-'), 'otherKeyed'], { encoding: 'utf8' });
console.log(JSON.stringify({ names: names.names, output }));
`;

function buildAndRun(shorten: boolean): { names: string[]; output: string } {
  const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', BUILD_AND_RUN, root, shorten ? 'yes' : 'no'], { encoding: 'utf8' });
  return JSON.parse(stdout);
}

test('names that leave or enter the program by name stay whole; the rest shrink, and the program behaves the same', { timeout: 120_000 }, () => {
  writeProgram();
  const plain = buildAndRun(false);
  const shortened = buildAndRun(true);
  for (const name of SHRINK) assert.ok(shortened.names.includes(name), `${name} shrinks: ${shortened.names.join(' ')}`);
  for (const name of WHOLE) assert.ok(!shortened.names.includes(name), `${name} stays whole`);
  assert.equal(shortened.output, plain.output);
  assert.deepEqual(JSON.parse(plain.output), [2, '{"reportedField":1,"reportedNested":{"nestedField":"n"}}', '{"dictField":2}', 'd', 'a', 3, 4, 6, 'walkedField', 'c', 8, 1, 9, 10, 23, 13, '{"dumpedField":16}', '{"narrowField":14,"wideOnly":15}', '{"calledField":17}', 'methodKey', 18, 19, '{"looseField":20}', 21, '{"sentField":22}', 6]);
});
