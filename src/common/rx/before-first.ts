import { Observable, type MonoTypeOperatorFunction } from 'rxjs';

/**
 * Emits what `head()` returns, when it returns something, just before the source's first value (and
 * nothing when the source ends without one). Unlike `concatMap` into `concat(head$, of(value))`, the
 * values after the first pass straight through, without an inner observable each.
 */
export function beforeFirst<T>(head: () => T | undefined): MonoTypeOperatorFunction<T> {
  return (source) =>
    new Observable<T>((subscriber) => {
      let first = true;
      return source.subscribe({
        next: (value) => {
          if (first) {
            first = false;
            let extra: T | undefined;
            try {
              extra = head();
            } catch (err) {
              subscriber.error(err);
              return;
            }
            if (extra !== undefined) subscriber.next(extra);
          }
          subscriber.next(value);
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
    });
}
