import { EMPTY, from, lastValueFrom, type Observable, of, Subject, throwError, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { beforeFirst } from './before-first.js';

const all = <T>(source: Observable<T>) => lastValueFrom(source.pipe(toArray()));

describe(beforeFirst.name, () => {
  it('puts the head just before the first value, once', async () => {
    await expect(all(from([1, 2, 3]).pipe(beforeFirst(() => 0)))).resolves.toEqual([0, 1, 2, 3]);
  });

  it('asks for the head when the first value comes, not before', () => {
    const source = new Subject<string>();
    let asked = 0;
    const seen: string[] = [];
    source.pipe(beforeFirst(() => `head after ${++asked}`)).subscribe((v) => seen.push(v));
    expect(asked).toBe(0);
    source.next('a');
    source.next('b');
    expect(seen).toEqual(['head after 1', 'a', 'b']);
  });

  it('adds nothing when the head is undefined or the source is empty', async () => {
    await expect(all(of(1, 2).pipe(beforeFirst<number>(() => undefined)))).resolves.toEqual([1, 2]);
    await expect(all(EMPTY.pipe(beforeFirst(() => 0)))).resolves.toEqual([]);
  });

  it('passes errors on, and fails when the head throws', async () => {
    await expect(all(throwError(() => new Error('upstream')).pipe(beforeFirst(() => 0)))).rejects.toThrow(
      'upstream',
    );
    const failing = beforeFirst<number>(() => {
      throw new Error('no head');
    });
    await expect(all(of(1).pipe(failing))).rejects.toThrow('no head');
  });
});
