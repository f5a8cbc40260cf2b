import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { ParleyError } from '../common/errors/parley-error.js';
import { ProviderAdapterFor, type ProviderAdapter } from './provider-adapter.js';
import type { ProviderKind } from './provider.types.js';

/** Finds every `@ProviderAdapterFor(kind)` class at start-up: adding a wire is adding a class. */
@Injectable()
export class AdapterRegistry implements OnModuleInit {
  private readonly adapters = new Map<ProviderKind, ProviderAdapter>();

  constructor(private readonly discovery: DiscoveryService) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getProviders({ metadataKey: ProviderAdapterFor.KEY })) {
      const kind = this.discovery.getMetadataByDecorator(ProviderAdapterFor, wrapper);
      const adapter = wrapper.instance as ProviderAdapter | undefined;
      if (!kind || !adapter) continue;
      if (this.adapters.has(kind)) throw new Error(`Two provider adapters claim the kind "${kind}"`);
      this.adapters.set(kind, adapter);
    }
  }

  forKind(kind: ProviderKind): ProviderAdapter {
    const adapter = this.adapters.get(kind);
    if (!adapter) throw new ParleyError('internal_error', `No adapter for provider kind "${kind}"`);
    return adapter;
  }
}
