import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readableValue } from '../../../src/node/storage-commands.js';

test('fetch shows a value as text when it is printable UTF-8 (tabs and line ends too), else in hex: CBOR, C0 and C1 controls (README walkthrough review F6, review 22, 9)', () => {
  const text = (s: string) => readableValue(new TextEncoder().encode(s));
  assert.deepEqual(text('hello from a'), { value: 'hello from a', encoding: 'utf8' });
  assert.deepEqual(text('two\r\nlines\tand a tab'), { value: 'two\r\nlines\tand a tab', encoding: 'utf8' });
  assert.deepEqual(text('grüße'), { value: 'grüße', encoding: 'utf8' });
  assert.equal(text('\u001b[2Jcleared').encoding, 'hex', 'an escape sequence would act on the terminal');
  assert.equal(text('\u009bcsi').encoding, 'hex', 'so would a C1 one');
  assert.deepEqual(readableValue(Uint8Array.of(0xa2, 0x01, 0xff)), { value: 'a201ff', encoding: 'hex' });
});
