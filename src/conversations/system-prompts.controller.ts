import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, UsePipes } from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import { Ctx, type TenantContext } from '../common/context/request-context.js';
import { AdminValidationPipe } from '../tenants/admin-validation.pipe.js';
import { TenantScoped } from '../tenants/tenant-scoped.decorator.js';
import {
  CreateSystemPromptDto,
  SystemPromptDto,
  SystemPromptListDto,
  UpdateSystemPromptDto,
} from './dto/system-prompt.dto.js';
import { SystemPromptsService } from './system-prompts.service.js';

const BASE = ['v1/system-prompts', ':tenantId/v1/system-prompts'];
const ONE = BASE.map((path) => `${path}/:id`);
const NOT_FOUND = 'Not one of your system prompts in this tenant (`not_found`).';

@ApiTags('conversations')
@TenantScoped()
@UsePipes(AdminValidationPipe)
@ApiParam({ name: 'tenantId', required: false, description: 'Tenant; omitted on /v1/... routes' })
@Controller()
export class SystemPromptsController {
  constructor(private readonly prompts: SystemPromptsService) {}

  @Post(BASE)
  @ApiCreatedResponse({ type: SystemPromptDto })
  create(@Ctx() ctx: TenantContext, @Body() body: CreateSystemPromptDto): Promise<SystemPromptDto> {
    return this.prompts.create(ctx, body);
  }

  @Get(BASE)
  @ApiOkResponse({ type: SystemPromptListDto })
  list(@Ctx() ctx: TenantContext): Promise<SystemPromptListDto> {
    return this.prompts.list(ctx);
  }

  @Get(ONE)
  @ApiOkResponse({ type: SystemPromptDto })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  get(@Ctx() ctx: TenantContext, @Param('id') id: string): Promise<SystemPromptDto> {
    return this.prompts.get(ctx, id);
  }

  @Patch(ONE)
  @ApiOkResponse({ type: SystemPromptDto })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  update(
    @Ctx() ctx: TenantContext,
    @Param('id') id: string,
    @Body() body: UpdateSystemPromptDto,
  ): Promise<SystemPromptDto> {
    return this.prompts.update(ctx, id, body);
  }

  @Delete(ONE)
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'Deleted. Conversations that used it keep its text.' })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  delete(@Ctx() ctx: TenantContext, @Param('id') id: string): Promise<void> {
    return this.prompts.delete(ctx, id);
  }
}
