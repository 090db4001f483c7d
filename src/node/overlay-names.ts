/*
 * One form for a user's name everywhere on the command line (store, fetch, route, lookup):
 * `alice@smiths.example`, `sip:alice@smiths.example` and, at a home of smiths.example, plain
 * `alice` all name the same person, so they hash to the same Resource-ID (RFC 7904 s3: H(AOR)).
 */

/** Drops a `sip:`/`sips:` scheme: the overlay name of an AOR is `user@domain`. */
export function withoutSipScheme(name: string): string {
  return name.replace(/^sips?:/i, '');
}

/** A user's overlay name: scheme dropped, and the home's own domain added to a bare user name. */
export function userName(name: string, ownDomain: string): string {
  const bare = withoutSipScheme(name);
  return bare.includes('@') ? bare : `${bare}@${ownDomain}`;
}
