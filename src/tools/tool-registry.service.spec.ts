import { Injectable, Module, type Provider, Scope, type Type } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Test, type TestingModule } from '@nestjs/testing';
import type { ChatCompletionTool } from 'openai/resources/chat/completions';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/app-config.js';
import { ConfigModule } from '../config/config.module.js';
import { GET_TIME_PARAMETERS } from './builtin/clock.tool.js';
import { ToolDefinitionError, ToolRegistry } from './tool-registry.service.js';
import { Tool, type ToolHandler, type ToolOptions } from './tool.decorator.js';
import { ToolsModule } from './tools.module.js';

// A team's tool, in a team's module: nothing in src/tools knows about it.
const WEATHER_PARAMETERS = {
  type: 'object',
  properties: {
    city: { type: 'string', minLength: 1 },
    unit: { enum: ['celsius', 'fahrenheit'] },
  },
  required: ['city'],
  additionalProperties: false,
} as const;

@Injectable()
@Tool({ name: 'get_weather', description: 'Current weather in a city', parameters: WEATHER_PARAMETERS })
class WeatherTool implements ToolHandler<{ city: string }> {
  async run(args: { city: string }): Promise<object> {
    return { city: args.city, temperature: 21 };
  }
}

@Module({ providers: [WeatherTool] })
class WeatherModule {}

const OPTIONS: ToolOptions = {
  name: 'test_tool',
  description: 'A test tool',
  parameters: { type: 'object', properties: { q: { type: 'string' } } },
};

/** A fresh tool class with these options (decorators run per class). */
function toolClass(options: Partial<ToolOptions> = {}, className = 'TestTool'): Type {
  const cls = class {
    async run(): Promise<string> {
      return 'ok';
    }
  };
  Object.defineProperty(cls, 'name', { value: className });
  Injectable()(cls);
  Tool({ ...OPTIONS, ...options })(cls);
  return cls;
}

let moduleRef: TestingModule | undefined;

afterEach(async () => {
  await moduleRef?.close();
  moduleRef = undefined;
});

/** Boots a registry with these providers in a feature module of their own. */
async function boot(...providers: Provider[]): Promise<ToolRegistry> {
  @Module({ providers })
  class FeatureModule {}
  moduleRef = await Test.createTestingModule({
    imports: [DiscoveryModule, FeatureModule],
    providers: [ToolRegistry],
  }).compile();
  moduleRef.useLogger(false);
  await moduleRef.init();
  return moduleRef.get(ToolRegistry);
}

async function bootError(...providers: Provider[]): Promise<Error> {
  try {
    await boot(...providers);
  } catch (error) {
    return error as Error;
  }
  throw new Error('start-up did not fail');
}

describe(ToolRegistry.name, () => {
  describe('discovery', () => {
    it('finds the built-ins and a tool listed in another module, with the ToolsModule as is', async () => {
      moduleRef = await Test.createTestingModule({
        imports: [ConfigModule.forRoot(loadConfig({ NODE_ENV: 'test' })), ToolsModule, WeatherModule],
      }).compile();
      moduleRef.useLogger(false);
      await moduleRef.init();
      const sut = moduleRef.get(ToolRegistry);

      expect(sut.names().sort()).toEqual(['calculator', 'get_time', 'get_weather']);
      expect(sut.has('get_weather')).toBe(true);
      expect(sut.get('get_weather')).toMatchObject({
        name: 'get_weather',
        description: 'Current weather in a city',
        className: 'WeatherTool',
        parameters: WEATHER_PARAMETERS,
      });
      expect(sut.get('get_weather')?.handler).toBe(moduleRef.get(WeatherTool));
    });

    it('knows nothing when no tool is listed', async () => {
      const sut = await boot();
      expect(sut.names()).toEqual([]);
      expect(sut.has('get_time')).toBe(false);
      expect(sut.get('get_time')).toBeUndefined();
    });

    it('counts a class listed in two modules once', async () => {
      @Module({ providers: [WeatherTool] })
      class OtherWeatherModule {}
      moduleRef = await Test.createTestingModule({
        imports: [DiscoveryModule, WeatherModule, OtherWeatherModule],
        providers: [ToolRegistry],
      }).compile();
      moduleRef.useLogger(false);
      await moduleRef.init();
      expect(moduleRef.get(ToolRegistry).names()).toEqual(['get_weather']);
    });

    it('accepts a useClass provider and a declared timeout', async () => {
      const sut = await boot({ provide: 'weather', useClass: toolClass({ name: 'slow', timeoutMs: 50 }) });
      expect(sut.get('slow')?.timeoutMs).toBe(50);
    });

    it('keeps a frozen copy of the schema, so nobody can change it after validation', async () => {
      const parameters = { type: 'object' as const, properties: { q: { type: 'string' } } };
      const sut = await boot(toolClass({ parameters }));
      parameters.properties.q.type = 'number';
      const registered = sut.get('test_tool')!.parameters;
      expect(registered).toEqual({ type: 'object', properties: { q: { type: 'string' } } });
      expect(Object.isFrozen(registered)).toBe(true);
      expect(Object.isFrozen(registered.properties)).toBe(true);
    });
  });

  describe('start-up validation', () => {
    it('fails on two tools with the same name, naming both classes', async () => {
      const error = await bootError(
        toolClass({ name: 'dup' }, 'FirstTool'),
        toolClass({ name: 'dup' }, 'SecondTool'),
      );
      expect(error).toBeInstanceOf(ToolDefinitionError);
      expect(error.message).toBe(
        'Invalid tool "dup" (class SecondTool): the name is already used by class FirstTool',
      );
    });

    it.each([['get time'], ['get.time'], [''], ['x'.repeat(65)], ['héllo']])(
      'fails on the name "%s"',
      async (name) => {
        const error = await bootError(toolClass({ name }, 'BadNameTool'));
        expect(error).toBeInstanceOf(ToolDefinitionError);
        expect(error.message).toBe(
          `Invalid tool "${name}" (class BadNameTool): the name must match ^[a-zA-Z0-9_-]{1,64}$`,
        );
      },
    );

    it('accepts a 64-character name with dashes and underscores', async () => {
      const name = 'a-b_C9'.repeat(10) + 'abcd';
      const sut = await boot(toolClass({ name }));
      expect(sut.names()).toEqual([name]);
    });

    it('fails on @Tool() without options', async () => {
      @Injectable()
      @Tool()
      class BareTool {
        async run(): Promise<string> {
          return '';
        }
      }
      const error = await bootError(BareTool);
      expect(error.message).toBe(
        'Invalid tool undefined (class BareTool): the name must match ^[a-zA-Z0-9_-]{1,64}$',
      );
    });

    it('fails on a class without a run method', async () => {
      @Injectable()
      @Tool(OPTIONS)
      class NoRunTool {
        execute(): string {
          return '';
        }
      }
      const error = await bootError(NoRunTool);
      expect(error).toBeInstanceOf(ToolDefinitionError);
      expect(error.message).toBe(
        'Invalid tool "test_tool" (class NoRunTool): it has no run(args, ctx) method (implement ToolHandler)',
      );
    });

    it.each([[''], ['   '], [undefined]])('fails on the description %j', async (description) => {
      const error = await bootError(toolClass({ description }));
      expect(error.message).toBe(
        'Invalid tool "test_tool" (class TestTool): the description must be a non-empty string',
      );
    });

    it.each([[0], [-5], [1.5], ['100']])('fails on timeoutMs %j', async (timeoutMs) => {
      const error = await bootError(toolClass({ timeoutMs: timeoutMs as number }));
      expect(error.message).toMatch(
        /^Invalid tool "test_tool" \(class TestTool\): timeoutMs must be a positive integer/,
      );
    });

    it.each<[string, unknown, string]>([
      ['missing', undefined, 'parameters must be a JSON Schema object'],
      ['an array', [{ type: 'object' }], 'parameters must be a JSON Schema object'],
      [
        'a string schema',
        { type: 'string' },
        "parameters must be an object schema (type: 'object'), as OpenAI requires for functions",
      ],
      [
        'without a type',
        { properties: {} },
        "parameters must be an object schema (type: 'object'), as OpenAI requires for functions",
      ],
      [
        'with a bad nested type',
        { type: 'object', properties: { q: { type: 'strng' } } },
        'parameters is not a valid JSON Schema: schema is invalid: data/properties/q/type must be equal to one of the allowed values',
      ],
      [
        'with a misspelt keyword',
        { type: 'object', propertes: { q: { type: 'string' } } },
        'parameters is not a valid JSON Schema: strict mode: unknown keyword: "propertes"',
      ],
      [
        'with required not an array',
        { type: 'object', required: 'q' },
        'parameters is not a valid JSON Schema: schema is invalid: data/required must be array',
      ],
      [
        'with an unknown format',
        { type: 'object', properties: { q: { type: 'string', format: 'colour' } } },
        'parameters is not a valid JSON Schema: unknown format "colour"',
      ],
      [
        'with an unresolvable $ref',
        { type: 'object', properties: { q: { $ref: '#/definitions/missing' } } },
        "parameters is not a valid JSON Schema: can't resolve reference #/definitions/missing",
      ],
      ['async', { type: 'object', $async: true }, 'parameters must not be an $async schema'],
    ])('fails on parameters %s', async (_label, parameters, problem) => {
      const error = await bootError(toolClass({ parameters: parameters as ToolOptions['parameters'] }));
      expect(error).toBeInstanceOf(ToolDefinitionError);
      expect(error.message).toContain(`Invalid tool "test_tool" (class TestTool): ${problem}`);
    });

    it('accepts rich schemas: formats, $defs, refs, union types, enums', async () => {
      const sut = await boot(
        toolClass({
          parameters: {
            type: 'object',
            $defs: {
              point: { type: 'object', properties: { x: { type: 'number' }, y: { type: 'number' } } },
            },
            properties: {
              at: { type: 'string', format: 'date-time' },
              from: { $ref: '#/$defs/point' },
              note: { type: ['string', 'null'], description: 'free text' },
              mode: { type: 'string', enum: ['fast', 'slow'], default: 'fast' },
            },
            required: ['at'],
          },
        }),
      );
      const { validate } = sut.get('test_tool')!;
      expect(validate({ at: '2026-11-21T22:05:00+01:00', from: { x: 1, y: 2 }, note: null })).toBe(true);
      expect(validate({ at: 'tomorrow' })).toBe(false);
    });

    it('lets two tools use the same $id', async () => {
      const parameters = { type: 'object' as const, $id: 'https://example.com/args' };
      const sut = await boot(
        toolClass({ name: 'a', parameters }, 'A'),
        toolClass({ name: 'b', parameters }, 'B'),
      );
      expect(sut.names()).toEqual(['a', 'b']);
    });

    it('fails on a request-scoped tool', async () => {
      @Injectable({ scope: Scope.REQUEST })
      @Tool(OPTIONS)
      class ScopedTool {
        async run(): Promise<string> {
          return '';
        }
      }
      const error = await bootError(ScopedTool);
      expect(error.message).toBe(
        'Invalid tool "test_tool" (class ScopedTool): tools must be singletons; request-scoped or transient providers are not supported',
      );
    });
  });

  describe('specs and expand', () => {
    let sut: ToolRegistry;
    const clientTool: ChatCompletionTool = {
      type: 'function',
      function: { name: 'lookup_order', description: 'Client side', parameters: { type: 'object' } },
    };

    async function bootThree(): Promise<ToolRegistry> {
      return boot(
        toolClass({ name: 'alpha', description: 'Alpha' }, 'Alpha'),
        toolClass({ name: 'beta', description: 'Beta', parameters: GET_TIME_PARAMETERS }, 'Beta'),
        toolClass({ name: 'gamma', description: 'Gamma' }, 'Gamma'),
      );
    }

    it('gives OpenAI function specs, all by default, in discovery order', async () => {
      sut = await bootThree();
      expect(sut.specs()).toEqual([
        {
          type: 'function',
          function: { name: 'alpha', description: 'Alpha', parameters: OPTIONS.parameters },
        },
        {
          type: 'function',
          function: { name: 'beta', description: 'Beta', parameters: GET_TIME_PARAMETERS },
        },
        {
          type: 'function',
          function: { name: 'gamma', description: 'Gamma', parameters: OPTIONS.parameters },
        },
      ]);
    });

    it('gives the named specs in the order asked, once each, ignoring unknown names', async () => {
      sut = await bootThree();
      const names = sut.specs(['gamma', 'nope', 'alpha', 'gamma']).map((s) => s.function.name);
      expect(names).toEqual(['gamma', 'alpha']);
      expect(sut.specs([])).toEqual([]);
    });

    it('expands names to registered specs and marks them server-side', async () => {
      sut = await bootThree();
      const { tools, serverSide } = sut.expand(['beta', 'unknown', 'alpha', 'beta'], []);
      expect(tools).toEqual(sut.specs(['beta', 'alpha']));
      expect([...serverSide]).toEqual(['beta', 'alpha']);
    });

    it('passes client tools through untouched and not server-side', async () => {
      sut = await bootThree();
      const custom: ChatCompletionTool = { type: 'custom', custom: { name: 'grammar' } };
      const { tools, serverSide } = sut.expand(['alpha'], [clientTool, custom]);
      expect(tools).toEqual([sut.specs(['alpha'])[0], clientTool, custom]);
      expect(tools[1]).toBe(clientTool);
      expect([...serverSide]).toEqual(['alpha']);
    });

    it("treats a full spec with a registered name as server-side, with the registered schema, not the client's", async () => {
      sut = await bootThree();
      const spoof: ChatCompletionTool = {
        type: 'function',
        function: {
          name: 'beta',
          description: 'Client version',
          parameters: { type: 'object', properties: {} },
        },
      };
      const { tools, serverSide } = sut.expand([], [spoof, clientTool]);
      expect(tools).toEqual([...sut.specs(['beta']), clientTool]);
      expect([...serverSide]).toEqual(['beta']);
    });

    it('dedupes by name, the first occurrence winning', async () => {
      sut = await bootThree();
      const otherLookup: ChatCompletionTool = {
        type: 'function',
        function: { name: 'lookup_order', description: 'second' },
      };
      const alphaSpec: ChatCompletionTool = { type: 'function', function: { name: 'alpha' } };
      const { tools } = sut.expand(['alpha'], [alphaSpec, clientTool, otherLookup]);
      expect(tools.map((t) => (t.type === 'function' ? t.function.description : ''))).toEqual([
        'Alpha',
        'Client side',
      ]);
    });

    it('hands out fresh spec objects whose schemas cannot be mutated', async () => {
      sut = await bootThree();
      const [first] = sut.specs(['alpha']);
      first.function.description = 'changed';
      expect(sut.specs(['alpha'])[0].function.description).toBe('Alpha');
      expect(() => {
        (first.function.parameters as Record<string, unknown>).type = 'string';
      }).toThrow(TypeError);
    });
  });
});
