/**
 * Runs the upstream simulator standalone (`npm run upstream`), for manual runs and the benchmark.
 *
 * Environment:
 *   UPSTREAM_PORT            port (default 4010)
 *   UPSTREAM_HOST            host (default 127.0.0.1)
 *   UPSTREAM_DELAY_MS        delay before the first byte of every answer (default 0)
 *   UPSTREAM_CHUNK_DELAY_MS  delay between stream deltas (default 0)
 *   UPSTREAM_RECORD          set to 1 to record requests in memory (default off: no growth under load)
 *
 * Every request is answered with a short text echoing the last user message (streamed or not as asked,
 * with deterministic usage).
 */
import {
  echoAnswer,
  UpstreamSimulator,
  type RecordedRequest,
  type SimAnswer,
} from './utils/upstream-simulator.js';

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0)
    throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
}

const port = envInt('UPSTREAM_PORT', 4010);
const delayMs = envInt('UPSTREAM_DELAY_MS', 0);
const interChunkDelayMs = envInt('UPSTREAM_CHUNK_DELAY_MS', 0);

const sim = await UpstreamSimulator.start({
  port,
  host: process.env.UPSTREAM_HOST || '127.0.0.1',
  record: process.env.UPSTREAM_RECORD === '1',
  maxRecorded: 1_000,
});

sim.setDefault(
  delayMs === 0 && interChunkDelayMs === 0
    ? echoAnswer
    : (req: RecordedRequest): SimAnswer => ({ ...echoAnswer(req), delayMs, interChunkDelayMs }),
);

console.log(`Upstream simulator listening on ${sim.baseUrl}`);

let stopping = false;
const shutdown = (): void => {
  if (stopping) return;
  stopping = true;
  sim.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
