import { Inject, Injectable, Logger, Optional, type OnModuleDestroy } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TenantContext } from '../../common/context/request-context.js';
import { errorMessage } from '../../common/errors/error-message.js';
import { ParleyError } from '../../common/errors/parley-error.js';
import type { AppConfig } from '../../config/app-config.js';
import { APP_CONFIG } from '../../config/config.module.js';
import { OutageLog } from '../../store/outage-log.js';
import { STORE, StoreClosedError, type Store } from '../../store/store.port.js';
import { TenantConfigService } from '../../tenants/tenant-config.service.js';
import { TokenLedgerService } from '../ledger/token-ledger.service.js';
import { DEFAULT_QUOTA_OPTIONS, QUOTA_OPTIONS, type QuotaOptions } from '../quota-options.js';
import { storeUnavailable } from '../quota-request.js';
import { isTokenQuotaEnforced } from '../quota-settings.js';
import { balanceKey, openReservationsKey, reservationKey } from './balance-keys.js';
import {
  adjustScript,
  BALANCE_SCRIPTS,
  extendScript,
  reclaimScript,
  renewScript,
  reserveScript,
  settleScript,
  type AdjustReply,
  type ExtendReply,
  type Reclaimed,
  type ReclaimReply,
  type ReserveReply,
  type SettleReply,
} from './balance.scripts.js';

/** Tokens held for one completion between the call's start and its settlement. */
export interface Reservation {
  /** The completion id. */
  id: string;
  tenantId: string;
  userId: string;
  /** Tokens debited up front (0 when not enforced). */
  reserved: number;
  /** The estimate asked for (capped at MAX_RESERVATION_TOKENS); `reserved` is less when the balance was. */
  estimate: number;
  /** False when the tenant has no token quota: nothing was reserved; settle and release do nothing. */
  enforced: boolean;
}

/** Recorded with the settlement in the ledger (`meta`). */
export interface SettlementMeta {
  model?: string;
  /** The provider's usage as OpenAI reports it. */
  usage?: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number };
  /** True when the provider reported no usage and Parley counted the tokens itself. */
  counted?: boolean;
  [key: string]: unknown;
}

export type SettleStatus =
  /** This call settled (or released) the reservation. */
  | 'settled'
  /** Settled before (a second settle or release): nothing changed. */
  | 'already_settled'
  /** No reservation in the store: it expired (reservationTtlMs) or never existed; nothing changed. */
  | 'not_found'
  /** The tenant has no token quota. */
  | 'not_enforced'
  /** The store stayed unreachable through every retry: the reservation is refunded when its lease runs out. */
  | 'failed';

export interface SettleOutcome {
  status: SettleStatus;
  /** Tokens finally charged for the completion (the reservation minus the refund, plus any extra). */
  charged: number;
  /** Tokens due but not charged because the balance reached zero. */
  shortfall: number;
  /** The balance right after, when this call changed it. */
  balance: number | null;
}

type FinishReason = 'settlement' | 'release';

/**
 * False when the store surely did not run the command: it is closed, or (RedisStore, which never
 * queues commands while disconnected) there was no connection to send it on. Otherwise the command may
 * have run with only its reply lost (the connection dropped while it was in flight).
 */
function couldHaveRun(err: unknown): boolean {
  if (err instanceof StoreClosedError) return false;
  return !(err instanceof Error && err.message.includes('enableOfflineQueue'));
}

export function insufficientTokens(): ParleyError {
  return new ParleyError('insufficient_tokens', 'Insufficient tokens');
}

/**
 * Token balances per (tenant, user) in the store, whole tokens, never below zero. Every change is one
 * atomic script (see balance.scripts.ts) and is also recorded in the ledger (asynchronously). Used by
 * the completion path (`reserve` before the upstream call, `extend` when its estimate grew, `settle` or
 * `release` after) and by the admin API (`get`, `adjust`).
 *
 * Store outages: `get`, `adjust` and `reserve` fail closed with 503 `service_unavailable`; `extend`,
 * `settle` and `release` never reject: settle and release retry (idempotently) and log when they give up.
 *
 * While a completion runs, this instance renews its reservation's lease; the reservations of an
 * instance that died are refunded once their leases run out (see balance.scripts.ts).
 */
@Injectable()
export class BalanceService implements OnModuleDestroy {
  private readonly logger = new Logger('TokenBalance');
  private readonly outage = new OutageLog(this.logger, 'Token balances', 'answering 503');
  private readonly options: QuotaOptions;
  /** The reservations this instance holds, by completion id: their user's list, and when they were made. */
  private readonly open = new Map<string, { openKey: string; madeAt: number }>();
  private readonly renewal: NodeJS.Timeout;

  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly tenants: TenantConfigService,
    private readonly ledger: TokenLedgerService,
    @Optional() @Inject(QUOTA_OPTIONS) options?: Partial<QuotaOptions>,
  ) {
    this.options = { ...DEFAULT_QUOTA_OPTIONS, ...options };
    for (const script of BALANCE_SCRIPTS) store.defineScript(script);
    this.renewal = setInterval(() => void this.renewLeases(), this.options.reservationLeaseMs / 4);
    this.renewal.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.renewal);
  }

  /** The balance (0 for a user who never had one), once the user's expired leases are refunded. */
  async get(tenantId: string, userId: string): Promise<number> {
    const [balance, ...reclaimed] = await this.guarded(() =>
      this.store.runScript<ReclaimReply>(
        reclaimScript.name,
        [balanceKey(tenantId, userId), openReservationsKey(tenantId, userId)],
        [],
      ),
    );
    this.recordReclaimed(tenantId, userId, reclaimed, balance);
    return balance;
  }

  /**
   * Adds `delta` (an integer, negative to deduct) and returns the new balance. A deduction larger
   * than the balance stops at zero; the rest is recorded as a shortfall.
   */
  async adjust(
    tenantId: string,
    userId: string,
    delta: number,
    reason?: string | null,
    actor?: string | null,
  ): Promise<number> {
    if (!Number.isSafeInteger(delta)) throw ParleyError.invalid('delta', 'delta must be an integer');
    const [applied, balance, shortfall] = await this.guarded(() =>
      this.store.runScript<AdjustReply>(adjustScript.name, [balanceKey(tenantId, userId)], [delta]),
    );
    const common = { tenantId, userId, balanceAfter: balance, actor: actor ?? null, note: reason ?? null };
    if (applied !== 0 || shortfall === 0) {
      this.ledger.record({
        ...common,
        reason: 'admin_adjustment',
        delta: applied,
        meta: applied === delta ? null : { requested: delta },
      });
    }
    if (shortfall > 0) this.ledger.record({ ...common, reason: 'shortfall', delta: 0, shortfall });
    return balance;
  }

  /**
   * Before the upstream call: balance < 1 is 429 `insufficient_tokens`; otherwise debits
   * min(estimate capped at MAX_RESERVATION_TOKENS, balance) in one atomic step. Nothing (no store
   * call) when the tenant has no token quota.
   */
  async reserve(ctx: TenantContext, estimate: number, completionId: string): Promise<Reservation> {
    const base = { id: completionId, tenantId: ctx.tenantId, userId: ctx.userId };
    const tenant = await this.tenants.get(ctx.tenantId);
    if (!tenant) throw new ParleyError('tenant_access_denied', 'You do not have access to this tenant.');
    if (!isTokenQuotaEnforced(tenant)) return { ...base, reserved: 0, estimate: 0, enforced: false };
    const amount = this.reservationAmount(estimate);
    let reply: ReserveReply;
    try {
      reply = await this.store.runScript<ReserveReply>(
        reserveScript.name,
        [
          balanceKey(base.tenantId, base.userId),
          reservationKey(base.tenantId, completionId),
          openReservationsKey(base.tenantId, base.userId),
        ],
        [amount, this.options.reservationTtlMs, this.options.reservationLeaseMs, completionId],
      );
    } catch (err) {
      this.outage.failed(err);
      if (couldHaveRun(err)) {
        // The script may have run and only its reply been lost: undo it once the store is back.
        void this.finish(
          { ...base, reserved: 0, estimate: 0, enforced: true },
          0,
          'release',
          { rollback: true },
          true,
        );
      }
      throw storeUnavailable('Token balances', err);
    }
    this.outage.succeeded();
    const [status, reserved, balance, balanceBeforeReserving, ...reclaimed] = reply;
    this.recordReclaimed(base.tenantId, base.userId, reclaimed, balanceBeforeReserving);
    if (status === 0) throw insufficientTokens();
    if (status === 2) {
      throw new ParleyError('internal_error', `Completion ${completionId} already has a token reservation.`);
    }
    this.ledger.record({
      ...base,
      reason: 'reservation',
      delta: -reserved,
      balanceAfter: balance,
      completionId,
      meta: { estimate: amount },
    });
    this.open.set(completionId, {
      openKey: openReservationsKey(base.tenantId, base.userId),
      madeAt: Date.now(),
    });
    return { ...base, reserved, estimate: amount, enforced: true };
  }

  /**
   * Raises a reservation to a larger estimate (the prompt grew once the conversation's history was
   * loaded): debits min(the difference, balance) more, in one atomic step. Never refuses and never
   * rejects: the completion has started and goes ahead with what could be reserved (a store failure
   * is logged; the settlement charges the usage either way). Returns the reservation to settle.
   */
  async extend(reservation: Reservation, estimate: number): Promise<Reservation> {
    if (!reservation.enforced) return reservation;
    const amount = this.reservationAmount(estimate);
    const extra = amount - reservation.estimate;
    if (extra <= 0) return reservation;
    const { tenantId, userId, id } = reservation;
    let reply: ExtendReply;
    try {
      reply = await this.store.runScript<ExtendReply>(
        extendScript.name,
        [balanceKey(tenantId, userId), reservationKey(tenantId, id), openReservationsKey(tenantId, userId)],
        [extra, this.options.reservationTtlMs, id],
      );
    } catch (err) {
      // If it ran and only the reply was lost, the settlement finds the larger reservation and
      // records the missing ledger row (see recordFinish).
      this.outage.failed(err);
      this.logger.warn(
        `Could not extend the token reservation of ${tenantId}:${id} by ${extra} (${errorMessage(err)}): going ahead with ${reservation.reserved}`,
      );
      return reservation;
    }
    this.outage.succeeded();
    const [status, added, , balance] = reply;
    if (status === 0) return reservation;
    if (added > 0) {
      this.ledger.record({
        tenantId,
        userId,
        completionId: id,
        reason: 'reservation',
        delta: -added,
        balanceAfter: balance,
        meta: { estimate: amount, extension: true },
      });
    }
    return { ...reservation, reserved: reservation.reserved + added, estimate: amount };
  }

  /**
   * After the call: charges `actualTokens` (usage.total_tokens) against the reservation: refunds the
   * rest, or charges the extra without going below zero (the shortfall is recorded). Idempotent: a
   * second settle or release changes nothing. Never rejects (see SettleOutcome.status).
   */
  settle(reservation: Reservation, actualTokens: number, meta: SettlementMeta = {}): Promise<SettleOutcome> {
    if (!reservation.enforced) return Promise.resolve(notEnforced());
    let actual = actualTokens;
    if (!Number.isFinite(actual) || actual < 0) {
      this.logger.warn(
        `Settling ${reservation.tenantId}:${reservation.id} with invalid usage ${String(actualTokens)}: charging the reservation`,
      );
      actual = reservation.reserved;
    }
    return this.finish(reservation, Math.ceil(actual), 'settlement', meta, false);
  }

  /** The call failed before any output: refunds the whole reservation. Idempotent, never rejects. */
  release(reservation: Reservation, meta: SettlementMeta = {}): Promise<SettleOutcome> {
    if (!reservation.enforced) return Promise.resolve(notEnforced());
    return this.finish(reservation, 0, 'release', meta, false);
  }

  /** One ledger row per reservation a script refunded because its lease ran out. */
  private recordReclaimed(
    tenantId: string,
    userId: string,
    reclaimed: Reclaimed,
    balanceAfter: number,
  ): void {
    const refunds: { completionId: string; amount: number }[] = [];
    for (let i = 0; i < reclaimed.length; i += 2) {
      refunds.push({ completionId: String(reclaimed[i]), amount: Number(reclaimed[i + 1]) });
    }
    // The script refunded them in order, the last one leaving `balanceAfter`.
    let balance = refunds.reduce((before, { amount }) => before - amount, balanceAfter);
    for (const { completionId, amount } of refunds) {
      balance += amount;
      this.logger.warn(
        `Refunded ${amount} token(s) reserved by ${tenantId}:${completionId}, whose instance stopped renewing it`,
      );
      this.ledger.record({
        tenantId,
        userId,
        completionId,
        reason: 'release',
        delta: amount,
        balanceAfter: balance,
        meta: { lease_expired: true },
      });
    }
  }

  /**
   * Moves the lease of every reservation this instance holds, one store call per user. One older than
   * the reservation's own lifetime is let go: a completion that never settled (a bug, not a crash)
   * gives its tokens back when the lease runs out, instead of holding them as long as the process runs.
   */
  private async renewLeases(): Promise<void> {
    const byUser = new Map<string, string[]>();
    const oldest = Date.now() - this.options.reservationTtlMs;
    for (const [id, { openKey, madeAt }] of this.open) {
      if (madeAt < oldest) {
        this.open.delete(id);
        continue;
      }
      const ids = byUser.get(openKey);
      if (ids) ids.push(id);
      else byUser.set(openKey, [id]);
    }
    await Promise.all(
      [...byUser].map(async ([key, ids]) => {
        try {
          await this.store.runScript<number>(
            renewScript.name,
            [key],
            [this.options.reservationLeaseMs, ...ids],
          );
          this.outage.succeeded();
        } catch (err) {
          this.outage.failed(err);
        }
      }),
    );
  }

  private reservationAmount(estimate: number): number {
    if (!Number.isFinite(estimate)) throw new RangeError(`invalid token estimate ${String(estimate)}`);
    return Math.min(this.config.maxReservationTokens, Math.max(1, Math.ceil(estimate)));
  }

  /** Runs a store call; a failure is 503 `service_unavailable`. */
  private async guarded<T>(call: () => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await call();
    } catch (err) {
      this.outage.failed(err);
      throw storeUnavailable('Token balances', err);
    }
    this.outage.succeeded();
    return result;
  }

  /**
   * Settles or releases, retrying on store errors with the same attempt id (a retry after a lost reply
   * gets the first outcome back, so the ledger gets it exactly once). `lostReserve`: rolling back a
   * reservation whose reply was lost, whose ledger row is written here too.
   */
  private async finish(
    reservation: Reservation,
    actual: number,
    reason: FinishReason,
    meta: SettlementMeta,
    lostReserve: boolean,
  ): Promise<SettleOutcome> {
    const { tenantId, userId, id } = reservation;
    const keys = [
      balanceKey(tenantId, userId),
      reservationKey(tenantId, id),
      openReservationsKey(tenantId, userId),
    ];
    const attempt = randomUUID();
    // Settled or not, this instance stops renewing the lease: one the store never heard settled is
    // refunded when it runs out.
    this.open.delete(id);
    const delays = this.options.settleRetryDelaysMs;
    for (let i = 0; ; i++) {
      let reply: SettleReply;
      try {
        reply = await this.store.runScript<SettleReply>(settleScript.name, keys, [
          actual,
          attempt,
          this.options.settledTtlMs,
          id,
        ]);
      } catch (err) {
        this.outage.failed(err);
        if (i >= delays.length || err instanceof StoreClosedError) {
          this.logger.error(
            `Could not ${reason === 'release' ? 'release' : 'settle'} the token reservation of ${tenantId}:${id}` +
              ` (${errorMessage(err)}): it is refunded when its lease runs out`,
          );
          return { status: 'failed', charged: reservation.reserved, shortfall: 0, balance: null };
        }
        await sleep(delays[i]);
        continue;
      }
      this.outage.succeeded();
      return this.recordFinish(reservation, reply, actual, reason, meta, lostReserve);
    }
  }

  private recordFinish(
    reservation: Reservation,
    reply: SettleReply,
    actual: number,
    reason: FinishReason,
    meta: SettlementMeta,
    lostReserve: boolean,
  ): SettleOutcome {
    const { tenantId, userId, id: completionId } = reservation;
    if (reply[0] === 0) {
      if (!lostReserve) {
        this.logger.warn(
          `No token reservation for ${tenantId}:${completionId} (expired?): ${actual} token(s) not settled`,
        );
      }
      return { status: 'not_found', charged: 0, shortfall: 0, balance: null };
    }
    if (reply[0] === 2) return { status: 'already_settled', charged: 0, shortfall: 0, balance: null };
    const [, reserved, delta, balance, shortfall, balanceAfterReserve] = reply;
    const common = { tenantId, userId, completionId };
    if (reserved === 0 && reservation.reserved > 0 && !lostReserve) {
      this.logger.warn(
        `The token reservation of ${tenantId}:${completionId} was refunded when its lease ran out: charging its usage alone`,
      );
    }
    if (lostReserve) {
      this.logger.warn(
        `Rolled back the token reservation of ${tenantId}:${completionId} whose reply was lost`,
      );
      this.ledger.record({
        ...common,
        reason: 'reservation',
        delta: -reserved,
        balanceAfter: balanceAfterReserve,
        meta: { lost_reply: true },
      });
    } else if (reserved > reservation.reserved) {
      // An extension that ran but whose reply was lost: the ledger gets its row now.
      this.ledger.record({
        ...common,
        reason: 'reservation',
        delta: reservation.reserved - reserved,
        balanceAfter: balanceAfterReserve,
        meta: { lost_reply: true, extension: true },
      });
    }
    this.ledger.record({
      ...common,
      reason,
      delta,
      balanceAfter: balance,
      meta: { ...meta, reserved, actual },
    });
    if (shortfall > 0) {
      this.ledger.record({ ...common, reason: 'shortfall', delta: 0, balanceAfter: balance, shortfall });
    }
    return { status: 'settled', charged: reserved - delta, shortfall, balance };
  }
}

function notEnforced(): SettleOutcome {
  return { status: 'not_enforced', charged: 0, shortfall: 0, balance: null };
}
