import { Body, Controller, Get, HttpCode, Param, Post, Query, UsePipes } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import { AdminRoute } from '../../auth/admin-route.decorator.js';
import { Ctx, type RequestContext } from '../../common/context/request-context.js';
import { AdminValidationPipe } from '../../tenants/admin-validation.pipe.js';
import { AdminBalancesService } from './admin-balances.service.js';
import { AdjustBalanceDto, BalanceDto, LedgerListDto, LedgerQueryDto } from './balance.dto.js';

@ApiTags('admin')
@AdminRoute()
@UsePipes(AdminValidationPipe)
@ApiNotFoundResponse({ description: 'No such tenant (`not_found`).' })
@ApiServiceUnavailableResponse({ description: 'The store is unreachable (`service_unavailable`).' })
@Controller('admin/tenants/:tenantId/users/:userId')
export class AdminBalancesController {
  constructor(private readonly balances: AdminBalancesService) {}

  @Get('balance')
  @ApiOkResponse({ type: BalanceDto, description: "The user's token balance in the tenant." })
  get(@Param('tenantId') tenantId: string, @Param('userId') userId: string): Promise<BalanceDto> {
    return this.balances.get(tenantId, userId);
  }

  @Post('balance')
  @HttpCode(200)
  @ApiOkResponse({ type: BalanceDto, description: 'The balance after the adjustment.' })
  @ApiBadRequestResponse({ description: '`delta` is not an integer (`invalid_value`, param `delta`).' })
  adjust(
    @Ctx() ctx: RequestContext,
    @Param('tenantId') tenantId: string,
    @Param('userId') userId: string,
    @Body() body: AdjustBalanceDto,
  ): Promise<BalanceDto> {
    return this.balances.adjust(ctx, tenantId, userId, body);
  }

  @Get('ledger')
  @ApiOkResponse({ type: LedgerListDto, description: "The user's newest ledger rows in the tenant." })
  ledger(
    @Param('tenantId') tenantId: string,
    @Param('userId') userId: string,
    @Query() query: LedgerQueryDto,
  ): Promise<LedgerListDto> {
    return this.balances.ledgerOf(tenantId, userId, query);
  }
}
