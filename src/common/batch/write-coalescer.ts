interface Queued<T> {
  item: T;
  resolve: () => void;
  reject: (reason: unknown) => void;
}

export interface WriteCoalescerOptions<T> {
  /** Writes several items in one go (one statement); all or nothing. */
  writeBatch: (items: T[]) => Promise<void>;
  /** Writes one item; used alone, and for each item of a batch that failed, so a bad item fails alone. */
  writeOne: (item: T) => Promise<void>;
  /** Items per batch at most. */
  maxBatch?: number;
  /** Batches under way at once at most. */
  maxInFlight?: number;
}

/**
 * Coalesces writes that arrive while earlier ones are under way into batches: when writes are rare
 * each goes out alone at once (no added wait), under load the ones that queued behind a batch leave
 * together in the next. Each caller's promise settles with its own item's outcome.
 */
export class WriteCoalescer<T> {
  private readonly queue: Queued<T>[] = [];
  private inFlight = 0;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;

  constructor(private readonly options: WriteCoalescerOptions<T>) {
    this.maxBatch = options.maxBatch ?? 100;
    this.maxInFlight = options.maxInFlight ?? 2;
  }

  write(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
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

  private async run(batch: Queued<T>[]): Promise<void> {
    if (batch.length > 1) {
      try {
        await this.options.writeBatch(batch.map((queued) => queued.item));
        for (const queued of batch) queued.resolve();
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
