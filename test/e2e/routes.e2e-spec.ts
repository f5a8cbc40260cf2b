import { RequestMethod } from '@nestjs/common';
import { GUARDS_METADATA, METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { DiscoveryService, MetadataScanner, ModulesContainer } from '@nestjs/core';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IS_ADMIN_ROUTE } from '../../src/auth/admin-route.decorator.js';
import { AdminGuard } from '../../src/auth/admin.guard.js';
import { IS_PUBLIC } from '../../src/common/context/public.decorator.js';
import { createTestApp, type TestApp } from '../utils/create-test-app.js';
import { expectErrorEnvelope } from '../utils/expect-error.js';

/** Routes anyone may call, on purpose. Adding one here is a security decision. */
const PUBLIC_ROUTES = ['GET /health', 'GET /health/ready', 'GET /metrics'];

interface NestRoute {
  key: string;
  method: string;
  path: string;
  isPublic: boolean;
  isAdmin: boolean;
  guards: unknown[];
}

function joinPath(...parts: string[]): string {
  const joined = parts
    .flatMap((p) => p.split('/'))
    .filter((s) => s !== '')
    .join('/');
  return `/${joined}`;
}

function nestRoutes(t: TestApp): NestRoute[] {
  // Built here rather than looked up, so the test does not depend on some module importing DiscoveryModule.
  const discovery = new DiscoveryService(t.app.get(ModulesContainer));
  const scanner = new MetadataScanner();
  const routes: NestRoute[] = [];
  for (const wrapper of discovery.getControllers()) {
    const instance = wrapper.instance as object | undefined;
    if (!instance || !wrapper.metatype) continue;
    const controller = wrapper.metatype;
    const prefixes = ([] as string[]).concat(Reflect.getMetadata(PATH_METADATA, controller) ?? '/');
    const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
    for (const name of scanner.getAllMethodNames(prototype)) {
      const handler = prototype[name] as object;
      const paths = Reflect.getMetadata(PATH_METADATA, handler) as string | string[] | undefined;
      const method = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
      if (paths === undefined || method === undefined) continue;
      const flag = (key: string) =>
        Boolean(Reflect.getMetadata(key, handler) ?? Reflect.getMetadata(key, controller));
      const guards = [
        ...(Reflect.getMetadata(GUARDS_METADATA, controller) ?? []),
        ...(Reflect.getMetadata(GUARDS_METADATA, handler) ?? []),
      ];
      for (const prefix of prefixes) {
        for (const path of ([] as string[]).concat(paths)) {
          const full = joinPath(prefix, path);
          const verb = RequestMethod[method];
          routes.push({
            key: `${verb} ${full}`,
            method: verb,
            path: full,
            isPublic: flag(IS_PUBLIC),
            isAdmin: flag(IS_ADMIN_ROUTE),
            guards,
          });
        }
      }
    }
  }
  return routes;
}

/**
 * Every route the HTTP server answers, from Fastify's route tree (`printRoutes`, one segment per
 * line, indented by depth); HEAD is Fastify's automatic twin of each GET.
 */
function serverRoutes(t: TestApp): string[] {
  const tree = t.app.getHttpAdapter().getInstance().printRoutes({ commonPrefix: false });
  const stack: string[] = [];
  const keys: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^(.*?)(?:├── |└── )(\S+)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!match) continue;
    const depth = match[1].length / 4;
    stack.length = depth;
    stack.push(match[2]);
    const path = stack.join('');
    for (const method of (match[3] ?? '').split(', ').filter((m) => m && m !== 'HEAD')) {
      keys.push(`${method} ${path}`);
    }
  }
  return keys;
}

/** A concrete URL for a route pattern (`:x` and `*x` become a segment). */
function concrete(path: string): string {
  return path.replace(/[{}]/g, '').replace(/[:*][A-Za-z0-9_]+/g, 'x');
}

describe('every route is guarded or public on purpose', () => {
  let t: TestApp;
  let routes: NestRoute[];
  beforeAll(async () => {
    t = await createTestApp();
    routes = nestRoutes(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('finds the routes', () => {
    expect(routes.length).toBeGreaterThan(10);
    expect(routes.map((r) => r.key)).toEqual(
      expect.arrayContaining(['GET /v1/models', 'POST /admin/tenants']),
    );
  });

  it('has exactly the expected public routes', () => {
    expect(
      routes
        .filter((r) => r.isPublic)
        .map((r) => r.key)
        .sort(),
    ).toEqual([...PUBLIC_ROUTES].sort());
  });

  it('serves nothing outside Nest controllers but the API docs', () => {
    // The route tree prints a wildcard segment without its leading slash.
    const nest = new Set(routes.map((r) => r.key.replace(/\/\*$/, '*')));
    const others = serverRoutes(t).filter((key) => !nest.has(key));
    expect(others.length).toBeGreaterThan(0);
    for (const key of others) expect(key).toMatch(/^GET \/docs(-json|\/.*|\*)?$/);
  });

  it('puts every admin route behind the admin guard, and nothing else under /admin', () => {
    for (const route of routes) {
      expect({ route: route.key, admin: route.isAdmin }).toEqual({
        route: route.key,
        admin: route.path.startsWith('/admin'),
      });
      if (route.isAdmin) expect(route.guards).toContain(AdminGuard);
    }
  });

  it('answers 401 invalid_token on every non-public route without a token', async () => {
    for (const route of routes.filter((r) => !r.isPublic)) {
      const res = await request(t.url)[route.method.toLowerCase() as 'get'](concrete(route.path));
      expect({ route: route.key, status: res.status }).toEqual({ route: route.key, status: 401 });
      expectErrorEnvelope(res, 401, 'invalid_token');
    }
  });

  it('answers the public routes and the docs without a token', async () => {
    for (const key of PUBLIC_ROUTES) {
      const res = await request(t.url).get(key.split(' ')[1]);
      expect({ key, status: res.status }).toEqual({ key, status: 200 });
    }
    expect((await request(t.url).get('/docs-json')).status).toBe(200);
  });
});
