import { describe, expect, it } from 'vitest';
import { ExpiringLru } from './expiring-lru.js';

describe(ExpiringLru.name, () => {
  it('returns values until they expire', () => {
    const sut = new ExpiringLru<string, number>(10);
    sut.set('a', 1, 1000);
    expect(sut.get('a', 999)).toBe(1);
    expect(sut.get('a', 1000)).toBeUndefined();
    expect(sut.size).toBe(0);
  });

  it('evicts the least recently used entry when full', () => {
    const sut = new ExpiringLru<string, number>(2);
    sut.set('a', 1, Infinity);
    sut.set('b', 2, Infinity);
    sut.get('a');
    sut.set('c', 3, Infinity);
    expect(sut.get('b')).toBeUndefined();
    expect(sut.get('a')).toBe(1);
    expect(sut.get('c')).toBe(3);
  });

  it('deletes by predicate and clears', () => {
    const sut = new ExpiringLru<string, number>(10);
    sut.set('t1:u1', 1, Infinity);
    sut.set('t2:u1', 2, Infinity);
    sut.deleteWhere((k) => k.startsWith('t1:'));
    expect(sut.get('t1:u1')).toBeUndefined();
    expect(sut.get('t2:u1')).toBe(2);
    sut.clear();
    expect(sut.size).toBe(0);
  });
});
