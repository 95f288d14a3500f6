// Hashing for consistent-hash load balancing: MurmurHash3 (x86, 32-bit) over a string, and
// Envoy's way of folding several hash policies into one value.

/** MurmurHash3 x86_32 over the UTF-16 code units of `text` (two bytes each). */
export function murmur3(text: string, seed = 0): number {
  let h = seed >>> 0;
  const len = text.length;
  let i = 0;
  // Two code units make one 32-bit block.
  for (; i + 1 < len; i += 2) {
    let k = (text.charCodeAt(i) & 0xffff) | ((text.charCodeAt(i + 1) & 0xffff) << 16);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < len) {
    let k = text.charCodeAt(i) & 0xffff;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= len * 2;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Envoy combines hash policies with `hash = rotl(hash, 1) ^ next`. */
export function combineHashes(previous: number | undefined, next: number): number {
  if (previous === undefined) return next >>> 0;
  return (((previous << 1) | (previous >>> 31)) ^ next) >>> 0;
}
