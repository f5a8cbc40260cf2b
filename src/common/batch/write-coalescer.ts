interface Queued<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (reason: unknown) => void;
}

export interface WriteCoalescerOptions<T, R> {
  /** Writes several items in one go (one statement), all or nothing; answers each item's result, in order. */
  writeBatch: (items: T[]) => Promise<R[]>;
  /** Writes one item; used alone, and for each item of a batch that failed, so a bad item fails alone. */
  writeOne: (item: T) => Promise<R>;
  /** Items per batch at most. */
  maxBatch?: number;
  /** Batches under way at once at most. */
  maxInFlight?: number;
}

/**
 * Coalesces writes that arrive while earlier ones are under way into batches: when writes are rare
 * each goes out alone at once (no added wait), under load the ones that queued behind a batch leave
 * together in the next. Each caller's promise settles with its own item's result.
 */
export class WriteCoalescer<T, R = void> {
  private readonly queue: Queued<T, R>[] = [];
  private inFlight = 0;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;

  constructor(private readonly options: WriteCoalescerOptions<T, R>) {
    this.maxBatch = options.maxBatch ?? 100;
    this.maxInFlight = options.maxInFlight ?? 2;
  }

  write(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.next();
    });
  }

  private next(): void {
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        this.next();
      });
    }
  }

  private async run(batch: Queued<T, R>[]): Promise<void> {
    if (batch.length > 1) {
      try {
        const results = await this.options.writeBatch(batch.map((queued) => queued.item));
        batch.forEach((queued, i) => queued.resolve(results[i]));
        return;
      } catch {
        // Each on its own below: the one that failed the batch fails alone.
      }
    }
    await Promise.all(
      batch.map(({ item, resolve, reject }) => this.options.writeOne(item).then(resolve, reject)),
    );
  }
}
