import path from 'node:path';

/*
 * The local control socket: DIR/control.sock, one JSON request per line and one JSON answer
 * per line. Only processes that can open DIR (the peer's owner) can talk to it.
 */
export const CONTROL_SOCKET = 'control.sock';

export function controlSocketPath(dir: string): string {
  return path.resolve(dir, CONTROL_SOCKET);
}

export type ControlRequest =
  | { op: 'status' }
  | { op: 'route'; name: string }
  | { op: 'attach'; nodeId: string }
  | { op: 'calls' }
  | { op: 'store'; kind: string; name: string; value: string; index?: number; key?: string; lifetime?: number }
  | { op: 'fetch'; kind: string; name: string }
  | { op: 'invite'; user?: string; client?: boolean; ttlSeconds?: number; household?: number }
  | { op: 'revoke'; user?: string; fingerprint?: string }
  | { op: 'lookup'; aor: string }
  | { op: 'user-certificate'; user: string }
  | { op: 'users' }
  | { op: 'user-release'; user: string }
  | { op: 'households' };

export type ControlAnswer = { ok: true; result: unknown } | { ok: false; error: string; name: string; internal?: boolean };
