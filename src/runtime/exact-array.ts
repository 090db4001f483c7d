/*
 * Copies of short lists that hold exactly their items. V8 builds `[...list, item]`, `filter()`
 * and `push()` results with room for about 16 more (some 130 bytes each); `concat` and `slice`
 * allocate what they hold. For lists a peer keeps by the thousand.
 */
export function appended<T>(list: readonly T[], item: T): readonly T[] {
  return list.concat([item]);
}

export function without<T>(list: readonly T[], item: T): readonly T[] {
  const at = list.indexOf(item);
  return at < 0 ? list : list.slice(0, at).concat(list.slice(at + 1));
}
