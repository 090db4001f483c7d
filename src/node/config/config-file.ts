import path from 'node:path';
import { readBytes } from '../../wire/schema.js';
import { readCborFile, writeCborFile } from '../cbor-file.js';
import { openConfig, type SignedConfig } from './overlay-config.js';

/** DIR/config.cbor holds the signed configuration document exactly as received (a CBOR bstr). */
const FILE = 'config.cbor';

export function loadConfig(dir: string): SignedConfig | undefined {
  const value = readCborFile(path.join(dir, FILE), 64 * 1024);
  return value === undefined ? undefined : openConfig(readBytes(value, '$.config.cbor', 1, 64 * 1024));
}

export function saveConfig(dir: string, signed: SignedConfig): void {
  writeCborFile(path.join(dir, FILE), signed.bytes, 0o644);
}
