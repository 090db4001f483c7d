import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkKnownFlags, hostFlag, numberFlag, parseArgs, requiredFlag } from '../../../src/cli/args.js';
import { UsageError } from '../../../src/runtime/errors.js';
import { parseAddress } from '../../../src/wire/address.js';

test('flags, boolean flags and positional words are parsed; unknown or malformed ones are usage errors', () => {
  const args = parseArgs(['route', 'alice', '--data', '/tmp/x', '--json', '--seed=5'], ['json']);
  assert.deepEqual(args.positional, ['route', 'alice']);
  assert.equal(requiredFlag(args, 'data'), '/tmp/x');
  assert.equal(args.flags.get('json'), true);
  assert.equal(numberFlag(args, 'seed', 1), 5);
  assert.throws(() => checkKnownFlags(args, ['data']), UsageError);
  assert.throws(() => requiredFlag(parseArgs([], []), 'data'), UsageError);
  assert.throws(() => numberFlag(parseArgs(['--nodes', 'many'], []), 'nodes', 1), UsageError);
  assert.throws(() => requiredFlag(parseArgs(['--data'], []), 'data'), /--data needs a value/);
  assert.throws(() => requiredFlag(parseArgs(['--data', '--json'], ['json']), 'data'), /--data needs a value/, 'not "--json" taken for the directory');
  assert.throws(() => checkKnownFlags(parseArgs(['status', '--bogus'], []), ['data']), /unknown flag --bogus/, 'an unknown flag at the end is told as unknown (README walkthrough review F9)');
});

test('bootstrap addresses parse for IPv4, IPv6 and a default port', () => {
  assert.deepEqual(parseAddress('127.0.0.1:7001'), { host: '127.0.0.1', port: 7001 });
  assert.deepEqual(parseAddress('[::1]:7001'), { host: '::1', port: 7001 });
  assert.deepEqual(parseAddress('198.18.0.5', 6084), { host: '198.18.0.5', port: 6084 });
  assert.throws(() => parseAddress('example.org:1'), RangeError);
  assert.throws(() => parseAddress('127.0.0.1:99999'), RangeError);
});

test('p2psip help names every flag a command reads (a flag the README uses must not be missing from it)', async () => {
  const { main } = await import('../../../src/cli/main.js');
  const { readdirSync, readFileSync } = await import('node:fs');
  let usage = '';
  assert.equal(await main(['help'], (text) => (usage += text)), 0);
  const read = new Set<string>();
  for (const dir of ['src/cli', 'src/node']) {
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      for (const m of readFileSync(`${dir}/${file}`, 'utf8').matchAll(/(?:Flag\(args, |flags\.(?:has|get)\()'([a-z0-9-]+)'/g)) read.add(m[1]);
    }
  }
  assert.ok(read.size > 40, `the flags read were found: ${[...read].join(' ')}`);
  const missing = [...read].filter((flag) => !usage.includes(`--${flag}`));
  assert.deepEqual(missing, [], 'flags read but not in the help');
});

test('a stray word or a flag a command does not have is a usage error, not silently ignored: status, start --json, store with four words (README walkthrough review F9)', async () => {
  const { main } = await import('../../../src/cli/main.js');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(`${tmpdir()}/p2psip-args-`);
  assert.throws(() => checkKnownFlags(parseArgs(['A', 'B', 'C'], []), [], 2), /unexpected "C"/);
  assert.doesNotThrow(() => checkKnownFlags(parseArgs(['A', 'B'], []), [], 2));
  for (const argv of [['status', 'now', '--data', dir], ['start', '--data', dir, '--json'], ['store', 'DEBUG-NOTE', 'me', 'hello', 'again', '--data', dir], ['calls', 'all', '--data', dir]]) {
    assert.equal(await main(argv, () => {}), 2, argv.join(' '));
  }
});

test('--bind and --advertise take an address or a host name without a port: "127.0.0.1:6084" is a usage error saying so, not an internal error from the socket', async () => {
  for (const host of ['127.0.0.1', '0.0.0.0', '::', '::1', 'fe80::1', 'pi.home.example', 'raspberrypi']) assert.equal(hostFlag(parseArgs(['--bind', host], []), 'bind'), host);
  assert.equal(hostFlag(parseArgs([], []), 'bind', '0.0.0.0'), '0.0.0.0');
  for (const bad of ['127.0.0.1:6084', '[::1]:6084', 'pi.home.example:6084', 'two words', '-x']) {
    assert.throws(() => hostFlag(parseArgs([`--bind=${bad}`], []), 'bind'), /--bind takes an address such as 192\.168\.1\.2, without a port/, bad);
  }
  const { main } = await import('../../../src/cli/main.js');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(`${tmpdir()}/p2psip-bind-`);
  assert.equal(await main(['start', '--data', dir, '--open', '--bind', '127.0.0.1:16084'], () => {}), 2, 'a usage error (2), before anything is opened');
});
