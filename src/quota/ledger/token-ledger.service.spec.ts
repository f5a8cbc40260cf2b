import type { Repository } from 'typeorm';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppConfig } from '../../config/app-config.js';
import type { TokenLedgerEntity } from './token-ledger.entity.js';
import { type LedgerEntry, TokenLedgerService } from './token-ledger.service.js';

/** A written row, as far as these tests look at it. */
interface WrittenRow {
  id: string;
  delta: number;
}

/** Just the batch insert the service runs; `failures` inserts reject before one succeeds. */
function fakeRepository() {
  const state = { failures: 0, inserts: [] as WrittenRow[][], calls: 0 };
  const repo = {
    // One array per column, in the statement's column order: id first, delta fourth.
    query: async (_sql: string, [ids, , , deltas]: [string[], unknown, unknown, number[]]) => {
      state.calls++;
      if (state.failures > 0) {
        state.failures--;
        throw new Error('database unreachable');
      }
      state.inserts.push(ids.map((id, i) => ({ id, delta: deltas[i] })));
      return [];
    },
  } as unknown as Repository<TokenLedgerEntity>;
  const written = () => state.inserts.flat();
  return { repo, state, written };
}

function entry(delta: number): LedgerEntry {
  return { tenantId: 't', userId: 'u', delta, balanceAfter: 100 + delta, reason: 'admin_adjustment' };
}

const running: TokenLedgerService[] = [];

function setup(options: { batch?: number; intervalMs?: number } = {}) {
  const db = fakeRepository();
  const sut = new TokenLedgerService(db.repo, { shutdownGraceMs: 1000 } as AppConfig, {
    ledgerBatchSize: options.batch ?? 100,
    ledgerFlushIntervalMs: options.intervalMs ?? 10,
    ledgerMaxRetryDelayMs: 20,
  });
  const logged: string[] = [];
  const log = (m: string) => logged.push(m);
  Reflect.set(sut, 'logger', { error: log, warn: log, log });
  running.push(sut);
  return { sut, logged, ...db };
}

describe(TokenLedgerService.name, () => {
  afterEach(async () => {
    for (const sut of running.splice(0)) await sut.onApplicationShutdown();
  });

  it('writes recorded rows shortly after, in one batch, in order', async () => {
    const { sut, state, written } = setup();
    for (const delta of [1, 2, 3]) sut.record(entry(delta));
    expect(state.calls).toBe(0); // nothing on the caller's path
    await expect.poll(() => written().length).toBe(3);
    expect(state.inserts).toHaveLength(1);
    expect(written().map((r) => r.delta)).toEqual([1, 2, 3]);
    expect(new Set(written().map((r) => r.id)).size).toBe(3);
    expect(sut.pendingCount).toBe(0);
  });

  it('splits into batches of the configured size', async () => {
    const { sut, state } = setup({ batch: 2, intervalMs: 1000 });
    for (const delta of [1, 2, 3, 4, 5]) sut.record(entry(delta));
    await sut.flush();
    expect(state.inserts.map((batch) => batch.map((r) => r.delta))).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('keeps failed rows and retries them until the database takes them, logging each failure', async () => {
    const { sut, state, written, logged } = setup();
    state.failures = 3;
    sut.record(entry(1));
    sut.record(entry(2));
    await expect.poll(() => written().length, { timeout: 2000 }).toBe(2);
    expect(state.calls).toBe(4);
    expect(written().map((r) => r.delta)).toEqual([1, 2]);
    expect(logged.filter((m) => m.includes('failed (attempt'))).toHaveLength(3);
    expect(logged.at(-1)).toMatch(/work again/);
  });

  it('flush waits through failures, and rejects when its time is up', async () => {
    const { sut, state, written } = setup({ intervalMs: 1000 });
    state.failures = 2;
    sut.record(entry(1));
    await sut.flush(2000);
    expect(written()).toHaveLength(1);
    state.failures = 1000;
    sut.record(entry(2));
    await expect(sut.flush(100)).rejects.toThrow('1 token ledger row(s) could not be written yet');
    expect(sut.pendingCount).toBe(1);
  });

  it('flushes on shutdown, and logs what it could not write', async () => {
    const { sut, state, written, logged } = setup({ intervalMs: 1000 });
    sut.record(entry(1));
    await sut.beforeApplicationShutdown();
    expect(written()).toHaveLength(1);
    state.failures = 1000;
    sut.record(entry(2));
    await sut.onApplicationShutdown();
    expect(sut.pendingCount).toBe(0);
    expect(logged.at(-1)).toMatch(/1 token ledger row\(s\) could not be written before shutdown: \[\{"id":/);
  });
});
