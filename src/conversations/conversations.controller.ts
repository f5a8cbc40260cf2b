import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Query, UsePipes } from '@nestjs/common';
import { ApiNoContentResponse, ApiNotFoundResponse, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import { Ctx, type TenantContext } from '../common/context/request-context.js';
import { AdminValidationPipe } from '../tenants/admin-validation.pipe.js';
import { TenantScoped } from '../tenants/tenant-scoped.decorator.js';
import { ConversationsService } from './conversations.service.js';
import {
  ConversationDto,
  ConversationListDto,
  ListConversationsQueryDto,
  UpdateConversationDto,
} from './dto/conversation.dto.js';
import { MessageListDto } from './dto/message.dto.js';

const BASE = ['v1/conversations', ':tenantId/v1/conversations'];
const ONE = BASE.map((path) => `${path}/:id`);
const NOT_FOUND = 'Not one of your conversations in this tenant (`not_found`).';

@ApiTags('conversations')
@TenantScoped()
@UsePipes(AdminValidationPipe)
@ApiParam({ name: 'tenantId', required: false, description: 'Tenant; omitted on /v1/... routes' })
@Controller()
export class ConversationsController {
  constructor(private readonly conversations: ConversationsService) {}

  @Get(BASE)
  @ApiOkResponse({ type: ConversationListDto })
  list(@Ctx() ctx: TenantContext, @Query() query: ListConversationsQueryDto): Promise<ConversationListDto> {
    return this.conversations.list(ctx, query);
  }

  @Get(ONE)
  @ApiOkResponse({ type: ConversationDto })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  get(@Ctx() ctx: TenantContext, @Param('id') id: string): Promise<ConversationDto> {
    return this.conversations.get(ctx, id);
  }

  @Patch(ONE)
  @ApiOkResponse({ type: ConversationDto })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  update(
    @Ctx() ctx: TenantContext,
    @Param('id') id: string,
    @Body() body: UpdateConversationDto,
  ): Promise<ConversationDto> {
    return this.conversations.rename(ctx, id, body.title);
  }

  @Delete(ONE)
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'Deleted, with its messages.' })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  delete(@Ctx() ctx: TenantContext, @Param('id') id: string): Promise<void> {
    return this.conversations.delete(ctx, id);
  }

  @Get(ONE.map((path) => `${path}/messages`))
  @ApiOkResponse({ type: MessageListDto })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  messages(@Ctx() ctx: TenantContext, @Param('id') id: string): Promise<MessageListDto> {
    return this.conversations.listMessages(ctx, id);
  }
}
