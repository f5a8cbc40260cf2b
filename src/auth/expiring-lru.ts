interface Entry<V> {
  value: V;
  expiresAt: number;
}

/**
 * A bounded in-process cache: entries expire at their own time, and the least recently used entry
 * goes first when the cache is full. A Map keeps insertion order, so re-inserting on a hit is the
 * whole LRU bookkeeping.
 */
export class ExpiringLru<K, V> {
  private readonly entries = new Map<K, Entry<V>>();

  constructor(private readonly maxEntries: number) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be >= 1');
  }

  get size(): number {
    return this.entries.size;
  }

  /** The value, or undefined when missing or expired (`now` defaults to the current time). */
  get(key: K, now = Date.now()): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: K, value: V, expiresAt: number): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  /** Deletes every entry whose key matches. */
  deleteWhere(predicate: (key: K) => boolean): void {
    for (const key of this.entries.keys()) if (predicate(key)) this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}
