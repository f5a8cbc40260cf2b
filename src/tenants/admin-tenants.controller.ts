import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Patch,
  Post,
  Put,
  Query,
  UsePipes,
} from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiTags,
} from '@nestjs/swagger';
import { AdminRoute } from '../auth/admin-route.decorator.js';
import { AdminValidationPipe } from './admin-validation.pipe.js';
import { ListQueryDto } from './dto/list-query.dto.js';
import { MemberDto, MemberListDto, PutMemberDto } from './dto/member.dto.js';
import { CreateTenantDto, TenantDto, TenantListDto, UpdateTenantDto } from './dto/tenant.dto.js';
import { TenantsService } from './tenants.service.js';

@ApiTags('admin')
@AdminRoute()
@UsePipes(AdminValidationPipe)
@Controller('admin/tenants')
export class AdminTenantsController {
  constructor(private readonly tenants: TenantsService) {}

  @Post()
  @ApiCreatedResponse({ type: TenantDto })
  create(@Body() body: CreateTenantDto): Promise<TenantDto> {
    return this.tenants.create(body);
  }

  @Get()
  @ApiOkResponse({ type: TenantListDto })
  list(@Query() query: ListQueryDto): Promise<TenantListDto> {
    return this.tenants.list(query);
  }

  @Get(':tenantId')
  @ApiOkResponse({ type: TenantDto })
  @ApiNotFoundResponse({ description: 'No such tenant.' })
  get(@Param('tenantId') tenantId: string): Promise<TenantDto> {
    return this.tenants.get(tenantId);
  }

  @Patch(':tenantId')
  @ApiOkResponse({ type: TenantDto })
  @ApiNotFoundResponse({ description: 'No such tenant.' })
  update(@Param('tenantId') tenantId: string, @Body() body: UpdateTenantDto): Promise<TenantDto> {
    return this.tenants.update(tenantId, body);
  }

  @Delete(':tenantId')
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'Deleted, with its members and providers.' })
  @ApiNotFoundResponse({ description: 'No such tenant.' })
  delete(@Param('tenantId') tenantId: string): Promise<void> {
    return this.tenants.delete(tenantId);
  }

  @Get(':tenantId/members')
  @ApiOkResponse({ type: MemberListDto })
  @ApiNotFoundResponse({ description: 'No such tenant.' })
  listMembers(@Param('tenantId') tenantId: string, @Query() query: ListQueryDto): Promise<MemberListDto> {
    return this.tenants.listMembers(tenantId, query);
  }

  @Put(':tenantId/members/:userId')
  @ApiOkResponse({ type: MemberDto, description: 'The member, added or updated.' })
  @ApiNotFoundResponse({ description: 'No such tenant.' })
  putMember(
    @Param('tenantId') tenantId: string,
    @Param('userId') userId: string,
    @Body() body: PutMemberDto,
  ): Promise<MemberDto> {
    return this.tenants.putMember(tenantId, userId, body);
  }

  @Delete(':tenantId/members/:userId')
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'Removed.' })
  @ApiNotFoundResponse({ description: 'No such tenant or member.' })
  deleteMember(@Param('tenantId') tenantId: string, @Param('userId') userId: string): Promise<void> {
    return this.tenants.deleteMember(tenantId, userId);
  }
}
