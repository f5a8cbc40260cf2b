import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './app-config.js';

const SHARED = { DATABASE_URL: 'postgres://db.example/parley', REDIS_URL: 'redis://cache.example:6379' };

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('WORKERS', () => {
  it('defaults to one process, with or without shared state', () => {
    expect(loadConfig({}).workers).toBe(1);
    expect(loadConfig(SHARED).workers).toBe(1);
    expect(loadConfig({ WORKERS: '1' }).workers).toBe(1);
  });

  it('takes a count, or auto for one per CPU', () => {
    expect(loadConfig({ ...SHARED, WORKERS: '4' }).workers).toBe(4);
    expect(loadConfig({ ...SHARED, WORKERS: ' AUTO ' }).workers).toBe(availableParallelism());
  });

  it.each(['0', '-2', '1.5', 'two', '5000'])('refuses %s', (value) => {
    const error = configError({ ...SHARED, WORKERS: value });
    expect(error.variable).toBe('WORKERS');
    expect(error.message).toMatch(/^Invalid configuration: WORKERS must be/);
  });

  it('needs REDIS_URL and DATABASE_URL for more than one, and says which are missing and why', () => {
    const noRedis = configError({ WORKERS: '2', DATABASE_URL: SHARED.DATABASE_URL });
    expect(noRedis.variable).toBe('WORKERS');
    expect(noRedis.message).toContain('(REDIS_URL unset)');
    expect(noRedis.message).toContain('cannot be shared between processes');

    expect(configError({ WORKERS: '2', REDIS_URL: SHARED.REDIS_URL }).message).toContain(
      '(DATABASE_URL unset)',
    );
    expect(configError({ WORKERS: '3' }).message).toContain('(REDIS_URL and DATABASE_URL unset)');
  });

  it('accepts auto on one CPU without shared state (it is one process then)', () => {
    const env = { WORKERS: 'auto' };
    if (availableParallelism() === 1) expect(loadConfig(env).workers).toBe(1);
    else expect(configError(env).variable).toBe('WORKERS');
  });
});
