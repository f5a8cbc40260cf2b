import { describe, expect, it } from 'vitest';
import { WriteCoalescer } from './write-coalescer.js';

/** A coalescer over a store whose writes finish when the test says so. */
function coalescerOverFakeStore(limits: { maxBatch?: number; maxInFlight: number }) {
  const calls: string[][] = [];
  const finish: (() => void)[] = [];
  const failing = new Set<string>();
  /** Answers each item upper-cased. */
  const write = (items: string[]): Promise<string[]> => {
    calls.push(items);
    return new Promise<string[]>((resolve, reject) => {
      finish.push(() =>
        items.some((i) => failing.has(i))
          ? reject(new Error('bad item'))
          : resolve(items.map((i) => i.toUpperCase())),
      );
    });
  };
  const writeOne = (item: string): Promise<string> => write([item]).then(([result]) => result);
  const sut = new WriteCoalescer<string, string>({ writeBatch: write, writeOne, ...limits });
  return { sut, calls, finish, failing };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe(WriteCoalescer.name, () => {
  it('writes at once when nothing is under way, and batches what queued meanwhile', async () => {
    const { sut, ...store } = coalescerOverFakeStore({ maxInFlight: 1 });
    const first = sut.write('a');
    const rest = ['b', 'c', 'd'].map((item) => sut.write(item));
    expect(store.calls).toEqual([['a']]);
    store.finish.shift()!();
    await first;
    await settle();
    expect(store.calls).toEqual([['a'], ['b', 'c', 'd']]);
    store.finish.shift()!();
    expect(await Promise.all([first, ...rest])).toEqual(['A', 'B', 'C', 'D']);
  });

  it('keeps batches to maxBatch items and maxInFlight batches', async () => {
    const { sut, ...store } = coalescerOverFakeStore({ maxBatch: 2, maxInFlight: 2 });
    const all = ['a', 'b', 'c', 'd', 'e', 'f'].map((item) => sut.write(item));
    expect(store.calls).toEqual([['a'], ['b']]);
    store.finish.shift()!();
    await settle();
    expect(store.calls).toEqual([['a'], ['b'], ['c', 'd']]);
    while (store.finish.length > 0) {
      store.finish.shift()!();
      await settle();
    }
    await Promise.all(all);
    expect(store.calls.slice(3)).toEqual([['e', 'f']]);
  });

  it('retries a failed batch item by item: only the bad item fails', async () => {
    const { sut, ...store } = coalescerOverFakeStore({ maxInFlight: 1 });
    store.failing.add('bad');
    const first = sut.write('a');
    const good = sut.write('good');
    const bad = sut.write('bad');
    store.finish.shift()!();
    await first;
    await settle();
    expect(store.calls.at(-1)).toEqual(['good', 'bad']);
    store.finish.shift()!();
    await settle();
    expect(store.calls.slice(-2)).toEqual([['good'], ['bad']]);
    store.finish.shift()!();
    store.finish.shift()!();
    await expect(good).resolves.toBe('GOOD');
    await expect(bad).rejects.toThrow('bad item');
  });
});
