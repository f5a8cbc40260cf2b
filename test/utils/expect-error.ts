import type { Response } from 'supertest';
import { expect } from 'vitest';

/** Asserts an answer is OpenAI's error envelope with this status and code. */
export function expectErrorEnvelope(
  res: Response,
  status: number,
  code: string,
  param?: string | null,
): void {
  expect({ status: res.status, body: res.body }).toMatchObject({ status, body: { error: { code } } });
  const error = res.body.error;
  expect(Object.keys(error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(typeof error.message).toBe('string');
  expect(typeof error.type).toBe('string');
  if (param !== undefined) expect(error.param).toBe(param);
}
