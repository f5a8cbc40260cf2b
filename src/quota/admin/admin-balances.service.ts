import { Injectable } from '@nestjs/common';
import { MAX_USER_ID_LENGTH } from '../../auth/jwt-claims.js';
import type { RequestContext } from '../../common/context/request-context.js';
import { ParleyError } from '../../common/errors/parley-error.js';
import { TenantsService } from '../../tenants/tenants.service.js';
import { BalanceService } from '../balance/balance.service.js';
import type { TokenLedgerEntity } from '../ledger/token-ledger.entity.js';
import { TokenLedgerService } from '../ledger/token-ledger.service.js';
import type {
  AdjustBalanceDto,
  BalanceDto,
  LedgerEntryDto,
  LedgerListDto,
  LedgerQueryDto,
} from './balance.dto.js';

const DEFAULT_LEDGER_PAGE = 100;

function toLedgerEntryDto(row: TokenLedgerEntity): LedgerEntryDto {
  return {
    id: row.id,
    delta: row.delta,
    balance_after: row.balanceAfter,
    reason: row.reason,
    shortfall: row.shortfall,
    completion_id: row.completionId,
    actor: row.actor,
    note: row.note,
    meta: row.meta,
    created_at: row.createdAt.toISOString(),
  };
}

/** The admin API's balance operations: the tenant must exist (404), the user id be a valid `sub`. */
@Injectable()
export class AdminBalancesService {
  constructor(
    private readonly tenants: TenantsService,
    private readonly balances: BalanceService,
    private readonly ledger: TokenLedgerService,
  ) {}

  async get(tenantId: string, userId: string): Promise<BalanceDto> {
    await this.check(tenantId, userId);
    return { balance: await this.balances.get(tenantId, userId) };
  }

  async adjust(
    ctx: RequestContext,
    tenantId: string,
    userId: string,
    dto: AdjustBalanceDto,
  ): Promise<BalanceDto> {
    await this.check(tenantId, userId);
    return { balance: await this.balances.adjust(tenantId, userId, dto.delta, dto.reason, ctx.userId) };
  }

  async ledgerOf(tenantId: string, userId: string, query: LedgerQueryDto): Promise<LedgerListDto> {
    await this.check(tenantId, userId);
    const limit = query.limit ?? DEFAULT_LEDGER_PAGE;
    const rows = await this.ledger.recent(tenantId, userId, limit + 1);
    return {
      object: 'list',
      data: rows.slice(0, limit).map(toLedgerEntryDto),
      has_more: rows.length > limit,
    };
  }

  private async check(tenantId: string, userId: string): Promise<void> {
    if (userId.length > MAX_USER_ID_LENGTH) {
      throw ParleyError.invalid('user_id', `user_id must be at most ${MAX_USER_ID_LENGTH} characters`);
    }
    await this.tenants.get(tenantId); // 404 when there is no such tenant
  }
}
