import { Logger } from '@nestjs/common';
import { describe, expect, it, vi } from 'vitest';
import { MemoryStore } from '../store/memory.store.js';
import type { Store } from '../store/store.port.js';
import { TurnWriteMarks } from './turn-write-marks.js';

const conversation = '7d3f6a52-5b8e-4c1a-9f0e-2a6b1c9d4e11';

/** Two instances' views of one shared store. */
function twoInstances(): { store: MemoryStore; a: TurnWriteMarks; b: TurnWriteMarks } {
  const store = new MemoryStore({ keyPrefix: 'marks-test:' });
  return { store, a: new TurnWriteMarks(store), b: new TurnWriteMarks(store) };
}

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe(TurnWriteMarks.name, () => {
  it('lets a turn through at once when no instance is writing the conversation', async () => {
    const { b } = twoInstances();
    const started = Date.now();
    await b.settled(conversation);
    expect(Date.now() - started).toBeLessThan(50);
  });

  it("holds another instance's next turn until every write it marked has ended", async () => {
    const { store, a, b } = twoInstances();
    const endCreation = a.begin(conversation);
    const endTurn = a.begin(conversation);
    let through = false;
    const next = b.settled(conversation).then(() => (through = true));

    await tick(30);
    endCreation();
    await tick(30);
    expect(through).toBe(false);
    endTurn();
    await next;
    expect(through).toBe(true);
    // The last write leaves no mark behind.
    expect(await store.get(`conversation-writes:${conversation}`)).toBeNull();
  });

  it('ends a mark that is ended before the store has it', async () => {
    const { a, b } = twoInstances();
    a.begin(conversation)();
    await tick(10);
    const started = Date.now();
    await b.settled(conversation);
    expect(Date.now() - started).toBeLessThan(50);
  });

  it('never fails a turn when the store does, and says so once per outage', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const broken = new Proxy(new MemoryStore(), {
      get: (target, prop, receiver) =>
        prop === 'get' || prop === 'runScript'
          ? () => Promise.reject(new Error('store down'))
          : (Reflect.get(target, prop, receiver) as unknown),
    }) as Store;
    const marks = new TurnWriteMarks(broken);
    const end = marks.begin(conversation);
    end();
    await expect(marks.settled(conversation)).resolves.toBeUndefined();
    await expect(marks.settled(conversation)).resolves.toBeUndefined();
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0][0]).toMatch(
      /store is unreachable \(store down\); a turn waits for this instance's writes only/,
    );
    warn.mockRestore();
  });
});
