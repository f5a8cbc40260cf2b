import type { Observable } from 'rxjs';

export type ClosableAsyncIterator<T> = AsyncIterableIterator<T> & { return(): Promise<IteratorResult<T>> };

/**
 * Reads an Observable as an async iterator, one value at a time; `return()` unsubscribes (which
 * aborts an upstream request). Values that arrive between reads are queued.
 */
export function toAsyncIterator<T>(source: Observable<T>): ClosableAsyncIterator<T> {
  const queue: T[] = [];
  let done = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const subscription = source.subscribe({
    next: (value) => {
      queue.push(value);
      notify();
    },
    error: (error: unknown) => {
      failure = { error };
      notify();
    },
    complete: () => {
      done = true;
      notify();
    },
  });
  const iterator: ClosableAsyncIterator<T> = {
    async next(): Promise<IteratorResult<T>> {
      for (;;) {
        if (queue.length > 0) return { value: queue.shift() as T, done: false };
        if (failure) throw failure.error;
        if (done) return { value: undefined, done: true };
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
    async return(): Promise<IteratorResult<T>> {
      done = true;
      subscription.unsubscribe();
      notify();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
