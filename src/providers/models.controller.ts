import { Controller, Get, Param } from '@nestjs/common';
import { ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import type { TenantConfig } from '../tenants/tenant-config.types.js';
import { CurrentTenant, TenantScoped } from '../tenants/tenant-scoped.decorator.js';
import { ModelListDto, ModelObjectDto } from './dto/provider.dto.js';
import { ProviderCatalogService, type ModelList, type ModelObject } from './provider-catalog.service.js';

const TENANT_PARAM = {
  name: 'tenantId',
  type: String,
  description: 'The tenant (the caller must be a member).',
};
// The docs name a wildcard segment `path`.
const MODEL_PARAM = { name: 'path', type: String, description: 'The model id; it may contain `/`.' };

/** OpenAI's `GET /v1/models` (and retrieve), for the caller's tenant. */
@ApiTags('models')
@TenantScoped()
@Controller()
export class ModelsController {
  constructor(private readonly catalog: ProviderCatalogService) {}

  @Get('v1/models')
  @ApiOkResponse({ type: ModelListDto })
  list(@CurrentTenant() tenant: TenantConfig): ModelList {
    return this.catalog.listModels(tenant);
  }

  @Get(':tenantId/v1/models')
  @ApiParam(TENANT_PARAM)
  @ApiOkResponse({ type: ModelListDto })
  listForTenant(@CurrentTenant() tenant: TenantConfig): ModelList {
    return this.catalog.listModels(tenant);
  }

  // A wildcard: model ids such as `org/model` have slashes.
  @Get('v1/models/*')
  @ApiParam(MODEL_PARAM)
  @ApiOkResponse({ type: ModelObjectDto })
  retrieve(@CurrentTenant() tenant: TenantConfig, @Param('*') model: string): ModelObject {
    return this.catalog.retrieveModel(tenant, model);
  }

  @Get(':tenantId/v1/models/*')
  @ApiParam(TENANT_PARAM)
  @ApiParam(MODEL_PARAM)
  @ApiOkResponse({ type: ModelObjectDto })
  retrieveForTenant(@CurrentTenant() tenant: TenantConfig, @Param('*') model: string): ModelObject {
    return this.catalog.retrieveModel(tenant, model);
  }
}
