import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, UsePipes } from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiTags,
} from '@nestjs/swagger';
import { AdminRoute } from '../auth/admin-route.decorator.js';
import { AdminValidationPipe } from '../tenants/admin-validation.pipe.js';
import { CreateProviderDto, ProviderDto, ProviderListDto, UpdateProviderDto } from './dto/provider.dto.js';
import { ProvidersService } from './providers.service.js';

@ApiTags('admin')
@AdminRoute()
@UsePipes(AdminValidationPipe)
@Controller('admin/tenants/:tenantId/providers')
export class AdminProvidersController {
  constructor(private readonly providers: ProvidersService) {}

  @Post()
  @ApiCreatedResponse({ type: ProviderDto, description: 'The provider (never its API key).' })
  @ApiNotFoundResponse({ description: 'No such tenant.' })
  create(@Param('tenantId') tenantId: string, @Body() body: CreateProviderDto): Promise<ProviderDto> {
    return this.providers.create(tenantId, body);
  }

  @Get()
  @ApiOkResponse({ type: ProviderListDto })
  @ApiNotFoundResponse({ description: 'No such tenant.' })
  list(@Param('tenantId') tenantId: string): Promise<ProviderListDto> {
    return this.providers.list(tenantId);
  }

  @Get(':providerId')
  @ApiOkResponse({ type: ProviderDto })
  @ApiNotFoundResponse({ description: 'No such tenant or provider.' })
  get(@Param('tenantId') tenantId: string, @Param('providerId') providerId: string): Promise<ProviderDto> {
    return this.providers.get(tenantId, providerId);
  }

  @Patch(':providerId')
  @ApiOkResponse({ type: ProviderDto })
  @ApiNotFoundResponse({ description: 'No such tenant or provider.' })
  update(
    @Param('tenantId') tenantId: string,
    @Param('providerId') providerId: string,
    @Body() body: UpdateProviderDto,
  ): Promise<ProviderDto> {
    return this.providers.update(tenantId, providerId, body);
  }

  @Delete(':providerId')
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'Deleted; if it was the default, the oldest remaining provider is.' })
  @ApiNotFoundResponse({ description: 'No such tenant or provider.' })
  delete(@Param('tenantId') tenantId: string, @Param('providerId') providerId: string): Promise<void> {
    return this.providers.delete(tenantId, providerId);
  }
}
