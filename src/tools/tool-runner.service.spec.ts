import { Injectable, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Test, type TestingModule } from '@nestjs/testing';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/app-config.js';
import { ConfigModule } from '../config/config.module.js';
import { ToolRegistry } from './tool-registry.service.js';
import {
  MAX_TOOL_OUTPUT_BYTES,
  type ToolCall,
  type ToolRunContext,
  ToolRunner,
  truncate,
} from './tool-runner.service.js';
import { Tool, type ToolContext, type ToolHandler, ToolResult } from './tool.decorator.js';

interface EchoArgs {
  text?: string;
  times?: number;
}

/** What the tools saw, for assertions. */
const seen: { ctx?: ToolContext; args?: unknown; abortedAfterTimeout?: boolean } = {};

@Injectable()
@Tool({
  name: 'echo',
  description: 'Returns its arguments',
  parameters: {
    type: 'object',
    properties: { text: { type: 'string' }, times: { type: 'integer', minimum: 1 } },
    additionalProperties: false,
  },
})
class EchoTool implements ToolHandler<EchoArgs> {
  async run(args: EchoArgs, ctx: ToolContext): Promise<object> {
    seen.args = args;
    seen.ctx = ctx;
    return { echoed: args };
  }
}

@Injectable()
@Tool({
  name: 'shout',
  description: 'Upper-cases text',
  parameters: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
})
class ShoutTool implements ToolHandler<{ text: string }> {
  async run(args: { text: string }): Promise<string> {
    return args.text.toUpperCase();
  }
}

@Injectable()
@Tool({ name: 'fail', description: 'Always throws', parameters: { type: 'object' } })
class FailingTool implements ToolHandler {
  async run(): Promise<string> {
    throw new Error('database is on fire');
  }
}

@Injectable()
@Tool({ name: 'fail_sync', description: 'Throws synchronously', parameters: { type: 'object' } })
class SyncFailingTool implements ToolHandler {
  run(): Promise<string> {
    throw new TypeError('not a promise in sight');
  }
}

@Injectable()
@Tool({ name: 'refuse', description: 'Returns a typed failure', parameters: { type: 'object' } })
class RefusingTool implements ToolHandler {
  async run(): Promise<ToolResult> {
    return ToolResult.error('the city is not known');
  }
}

@Injectable()
@Tool({ name: 'wrapped', description: 'Returns a ToolResult.success', parameters: { type: 'object' } })
class WrappedTool implements ToolHandler {
  async run(): Promise<ToolResult> {
    return ToolResult.success({ ok: true });
  }
}

/** Ignores its signal entirely: the runner must still answer on time. */
@Injectable()
@Tool({
  name: 'stubborn',
  description: 'Never finishes in time',
  parameters: { type: 'object' },
  timeoutMs: 30,
})
class StubbornTool implements ToolHandler {
  async run(_args: unknown, ctx: ToolContext): Promise<string> {
    await sleep(300);
    seen.abortedAfterTimeout = ctx.signal.aborted;
    return 'too late';
  }
}

/** Waits for its signal, as a well-behaved tool does. */
@Injectable()
@Tool({ name: 'patient', description: 'Waits until aborted', parameters: { type: 'object' } })
class PatientTool implements ToolHandler {
  async run(_args: unknown, ctx: ToolContext): Promise<string> {
    seen.ctx = ctx;
    await new Promise((_, reject) =>
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error)),
    );
    return 'unreachable';
  }
}

@Injectable()
@Tool({ name: 'big', description: 'Returns a lot', parameters: { type: 'object' } })
class BigTool implements ToolHandler {
  async run(): Promise<string> {
    return 'x'.repeat(200_000);
  }
}

@Injectable()
@Tool({ name: 'odd', description: 'Returns what JSON cannot hold', parameters: { type: 'object' } })
class OddOutputTool implements ToolHandler {
  async run(): Promise<object> {
    return { n: 10n };
  }
}

@Injectable()
@Tool({ name: 'nothing', description: 'Returns undefined', parameters: { type: 'object' } })
class NothingTool implements ToolHandler {
  async run(): Promise<object> {
    return undefined as unknown as object;
  }
}

@Module({
  providers: [
    EchoTool,
    ShoutTool,
    FailingTool,
    SyncFailingTool,
    RefusingTool,
    WrappedTool,
    StubbornTool,
    PatientTool,
    BigTool,
    OddOutputTool,
    NothingTool,
  ],
})
class TestToolsModule {}

const TIMEOUT_MS = 100;

function call(name: string, args = '{}'): ToolCall {
  return { id: `call_${name}`, name, arguments: args };
}

function context(signal = new AbortController().signal): ToolRunContext {
  return { tenantId: 'acme', userId: 'user-1', signal };
}

describe(ToolRunner.name, () => {
  let moduleRef: TestingModule;
  let sut: ToolRunner;

  beforeAll(async () => {
    moduleRef = await Test.createTestingModule({
      imports: [
        ConfigModule.forRoot(loadConfig({ NODE_ENV: 'test', TOOL_TIMEOUT_MS: String(TIMEOUT_MS) })),
        DiscoveryModule,
        TestToolsModule,
      ],
      providers: [ToolRegistry, ToolRunner],
    }).compile();
    moduleRef.useLogger(false);
    await moduleRef.init();
    sut = moduleRef.get(ToolRunner);
  });

  afterAll(async () => {
    await moduleRef.close();
  });

  describe('arguments', () => {
    it.each([[''], ['   '], ['\n']])('treats %j as {}', async (args) => {
      const outcome = await sut.run(call('echo', args), context());
      expect(outcome).toEqual({
        toolCallId: 'call_echo',
        name: 'echo',
        status: 'success',
        output: '{"echoed":{}}',
      });
    });

    it('treats missing arguments as {}', async () => {
      const outcome = await sut.run(
        { id: 'c', name: 'echo', arguments: undefined as unknown as string },
        context(),
      );
      expect(outcome).toMatchObject({ status: 'success', output: '{"echoed":{}}' });
    });

    it('passes parsed arguments to the tool', async () => {
      const outcome = await sut.run(call('echo', '{"text":"hi","times":2}'), context());
      expect(seen.args).toEqual({ text: 'hi', times: 2 });
      expect(outcome.output).toBe('{"echoed":{"text":"hi","times":2}}');
    });

    it('answers invalid JSON with an error outcome, without running the tool', async () => {
      seen.args = undefined;
      const outcome = await sut.run(call('echo', '{"text": "hi"'), context());
      expect(outcome.status).toBe('error');
      expect(outcome.output).toMatch(/^Tool echo failed: arguments are not valid JSON: .+/);
      expect(seen.args).toBeUndefined();
    });

    it.each<[string, string]>([
      ['{"text": 5}', 'Tool echo failed: invalid arguments: /text must be string'],
      ['{"times": 0}', 'Tool echo failed: invalid arguments: /times must be >= 1'],
      ['{"times": 1.5}', 'Tool echo failed: invalid arguments: /times must be integer'],
      [
        '{"colour": "red"}',
        "Tool echo failed: invalid arguments: (root) must NOT have additional properties ('colour')",
      ],
      ['[1]', 'Tool echo failed: invalid arguments: (root) must be object'],
      ['null', 'Tool echo failed: invalid arguments: (root) must be object'],
      [
        '{"text": 1, "times": "x"}',
        'Tool echo failed: invalid arguments: /text must be string; /times must be integer',
      ],
    ])('validates %s against the schema before running', async (args, message) => {
      seen.args = undefined;
      const outcome = await sut.run(call('echo', args), context());
      expect(outcome).toEqual({ toolCallId: 'call_echo', name: 'echo', status: 'error', output: message });
      expect(seen.args).toBeUndefined();
    });

    it('reports a missing required property', async () => {
      const outcome = await sut.run(call('shout', '{}'), context());
      expect(outcome.output).toBe(
        "Tool shout failed: invalid arguments: (root) must have required property 'text'",
      );
    });
  });

  describe('outputs', () => {
    it('sends a string result as is', async () => {
      expect(await sut.run(call('shout', '{"text":"hello"}'), context())).toEqual({
        toolCallId: 'call_shout',
        name: 'shout',
        status: 'success',
        output: 'HELLO',
      });
    });

    it('JSON-encodes an object result', async () => {
      const outcome = await sut.run(call('echo', '{"text":"a\\"b"}'), context());
      expect(JSON.parse(outcome.output)).toEqual({ echoed: { text: 'a"b' } });
    });

    it('unwraps ToolResult.success', async () => {
      expect(await sut.run(call('wrapped'), context())).toMatchObject({
        status: 'success',
        output: '{"ok":true}',
      });
    });

    it('turns ToolResult.error into an error outcome', async () => {
      expect(await sut.run(call('refuse'), context())).toMatchObject({
        status: 'error',
        output: 'Tool refuse failed: the city is not known',
      });
    });

    it('sends undefined as null', async () => {
      expect(await sut.run(call('nothing'), context())).toMatchObject({ status: 'success', output: 'null' });
    });

    it('turns an output JSON cannot hold into an error outcome', async () => {
      const outcome = await sut.run(call('odd'), context());
      expect(outcome.status).toBe('error');
      expect(outcome.output).toMatch(/^Tool odd failed: the output is not JSON-serialisable: .*BigInt/);
    });

    it(`truncates outputs over ${MAX_TOOL_OUTPUT_BYTES} bytes with a marker`, async () => {
      const outcome = await sut.run(call('big'), context());
      expect(outcome.status).toBe('success');
      expect(Buffer.byteLength(outcome.output)).toBeLessThanOrEqual(MAX_TOOL_OUTPUT_BYTES);
      expect(outcome.output.length).toBeGreaterThan(MAX_TOOL_OUTPUT_BYTES - 100);
      expect(outcome.output).toMatch(/\n\[output truncated: 200000 bytes, showing the first \d+\]$/);
    });
  });

  describe('failures', () => {
    it('answers an unknown tool with an error outcome', async () => {
      expect(await sut.run(call('teleport', '{"to":"Mars"}'), context())).toEqual({
        toolCallId: 'call_teleport',
        name: 'teleport',
        status: 'error',
        output: 'Tool teleport failed: no such tool',
      });
    });

    it('answers a registered tool the request did not enable as no such tool, without running it', async () => {
      const enabled = new Set(['fail']);
      expect(await sut.run(call('echo', '{"text":"hi"}'), { ...context(), enabled })).toEqual({
        toolCallId: 'call_echo',
        name: 'echo',
        status: 'error',
        output: 'Tool echo failed: no such tool',
      });
      expect(
        await sut.run(call('echo', '{"text":"hi"}'), { ...context(), enabled: new Set(['echo']) }),
      ).toMatchObject({ status: 'success' });
    });

    it('turns a thrown error into an error outcome', async () => {
      expect(await sut.run(call('fail'), context())).toEqual({
        toolCallId: 'call_fail',
        name: 'fail',
        status: 'error',
        output: 'Tool fail failed: database is on fire',
      });
    });

    it('catches a synchronous throw too', async () => {
      expect(await sut.run(call('fail_sync'), context())).toMatchObject({
        status: 'error',
        output: 'Tool fail_sync failed: not a promise in sight',
      });
    });

    it("times out after the tool's own timeoutMs, even when the tool ignores its signal", async () => {
      const started = Date.now();
      const outcome = await sut.run(call('stubborn'), context());
      expect(outcome).toEqual({
        toolCallId: 'call_stubborn',
        name: 'stubborn',
        status: 'error',
        output: 'Tool stubborn failed: timed out after 30 ms',
      });
      expect(Date.now() - started).toBeLessThan(250);
      await sleep(350);
      expect(seen.abortedAfterTimeout).toBe(true);
    });

    it('times out after the configured toolTimeoutMs, aborting the signal the tool got', async () => {
      const outcome = await sut.run(call('patient'), context());
      expect(outcome.output).toBe(`Tool patient failed: timed out after ${TIMEOUT_MS} ms`);
      expect(seen.ctx?.signal.aborted).toBe(true);
    });

    it("stops when the request's signal aborts, and aborts the tool's signal", async () => {
      const request = new AbortController();
      const running = sut.run(call('patient'), context(request.signal));
      await sleep(10);
      request.abort();
      expect(await running).toMatchObject({
        status: 'error',
        output: 'Tool patient failed: aborted: the request was cancelled',
      });
      expect(seen.ctx?.signal.aborted).toBe(true);
    });

    it('does not run a tool for an already aborted request', async () => {
      seen.args = undefined;
      const outcome = await sut.run(call('echo'), context(AbortSignal.abort()));
      expect(outcome.output).toBe('Tool echo failed: aborted: the request was cancelled');
      expect(seen.args).toBeUndefined();
    });
  });

  describe('context', () => {
    it('gives the tool its tenant, user, a signal of its own and a deadline', async () => {
      const request = new AbortController();
      const before = Date.now();
      await sut.run(call('echo'), context(request.signal));
      const ctx = seen.ctx!;
      expect(ctx).toMatchObject({ tenantId: 'acme', userId: 'user-1' });
      expect(ctx.signal).not.toBe(request.signal);
      expect(ctx.signal.aborted).toBe(false);
      expect(ctx.deadline).toBeGreaterThanOrEqual(before + TIMEOUT_MS);
      expect(ctx.deadline).toBeLessThanOrEqual(Date.now() + TIMEOUT_MS);
    });

    it('runs calls concurrently, each with its own outcome', async () => {
      const outcomes = await Promise.all([
        sut.run(call('shout', '{"text":"a"}'), context()),
        sut.run(call('fail'), context()),
        sut.run(call('teleport'), context()),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['success', 'error', 'error']);
    });
  });
});

describe(truncate.name, () => {
  it('keeps text within the limit as is', () => {
    expect(truncate('hello', 5)).toBe('hello');
    expect(truncate('é'.repeat(100), 200)).toBe('é'.repeat(100));
  });

  it('cuts to the limit in bytes, marker included', () => {
    const sut = truncate('a'.repeat(1000), 200);
    expect(Buffer.byteLength(sut)).toBeLessThanOrEqual(200);
    expect(sut).toMatch(/^a+\n\[output truncated: 1000 bytes, showing the first \d+\]$/);
  });

  it('never cuts inside a multi-byte character', () => {
    for (const text of ['€'.repeat(500), '😀'.repeat(300), 'a€😀'.repeat(200)]) {
      for (let limit = 100; limit < 110; limit++) {
        const sut = truncate(text, limit);
        expect(Buffer.byteLength(sut)).toBeLessThanOrEqual(limit);
        expect(sut).not.toContain('\uFFFD');
        const kept = sut.slice(0, sut.indexOf('\n['));
        expect(text.startsWith(kept)).toBe(true);
        expect(sut.endsWith(`showing the first ${Buffer.byteLength(kept)}]`)).toBe(true);
      }
    }
  });
});
