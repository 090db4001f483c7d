/**
 * The base of every error p2psip throws on purpose. Each subclass carries a stable `name`
 * callers can switch on, and the protocol code where one exists.
 */
export class P2psipError extends Error {
  override readonly name: string = 'P2psipError';
}

/** An operation was aborted by its AbortSignal or because its owner stopped. */
export class AbortedError extends P2psipError {
  override readonly name = 'AbortedError';
}

/** Bad command-line usage or configuration; the CLI exits with status 2. */
export class UsageError extends P2psipError {
  override readonly name = 'UsageError';
}
