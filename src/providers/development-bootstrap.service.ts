import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import cluster from 'node:cluster';
import type { Repository } from 'typeorm';
import { signHs256 } from '../auth/dev-token.js';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/config.module.js';
import { BalanceService } from '../quota/balance/balance.service.js';
import { TenantsService } from '../tenants/tenants.service.js';
import { ProviderEntity } from './entities/provider.entity.js';
import { baseUrlProblem } from './provider-url.js';
import { ProvidersService } from './providers.service.js';

export const DEFAULT_TENANT_ID = 'default';
export const DEV_USER_ID = 'dev-user';
const DEV_TOKEN_TTL_S = 30 * 24 * 3600;
const FALLBACK_MODEL = 'gpt-4o-mini';
const PLACEHOLDER_API_KEY = 'sk-local';
const CONTEXT_LENGTH = 128_000;
const MODELS_FETCH_TIMEOUT_MS = 2000;
const MAX_LISTED_MODELS = 200;

const DEV_BALANCE = 1_000_000;

/**
 * The convenience tenant works at once: it does not meter tokens (an operator can turn that on
 * with PATCH /admin/tenants/default {settings: {token_quota: true}}). Every other tenant does.
 */
const DEFAULT_TENANT_SETTINGS = { token_quota: false };

/**
 * Development conveniences at start-up, idempotent across restarts:
 * - no JWT_SECRET (development): a `default` tenant with `dev-user` as a member, and a ready-made
 *   token for that user printed to the log (signed with the generated secret), and a token
 *   balance for that user;
 * - OPENAI_BASE_URL set: a `default` tenant with a provider on that URL.
 */
@Injectable()
export class DevelopmentBootstrapService implements OnApplicationBootstrap {
  private readonly logger = new Logger('Bootstrap');

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly tenants: TenantsService,
    private readonly providers: ProvidersService,
    @InjectRepository(ProviderEntity) private readonly providerRows: Repository<ProviderEntity>,
    private readonly balances: BalanceService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.config.openaiBaseUrl) await this.ensureDefaultProvider(this.config.openaiBaseUrl);
    if (this.config.jwtSecretGenerated && this.config.jwtSecret && this.config.nodeEnv !== 'production') {
      await this.tenants.ensureTenant(DEFAULT_TENANT_ID, 'Default', DEFAULT_TENANT_SETTINGS);
      await this.tenants.ensureMember(DEFAULT_TENANT_ID, DEV_USER_ID);
      await this.ensureDevBalance();
      const now = Math.floor(Date.now() / 1000);
      const token = signHs256(
        { sub: DEV_USER_ID, tenant_id: DEFAULT_TENANT_ID, iat: now, exp: now + DEV_TOKEN_TTL_S },
        this.config.jwtSecret,
      );
      // Every worker of a cluster bootstraps, with the same secret: one of them says so.
      if (cluster.isWorker && cluster.worker?.id !== 1) return;
      this.logger.warn(
        'JWT_SECRET is not set: tokens are checked against a random secret made for this process.',
      );
      this.logger.log(
        `Development token for user "${DEV_USER_ID}" in tenant "${DEFAULT_TENANT_ID}" (valid until this process stops): ${token}`,
      );
    }
  }

  /** Balances are enforced: give the development user enough to try things right away. */
  private async ensureDevBalance(): Promise<void> {
    try {
      const balance = await this.balances.get(DEFAULT_TENANT_ID, DEV_USER_ID);
      if (balance < DEV_BALANCE / 2) {
        await this.balances.adjust(
          DEFAULT_TENANT_ID,
          DEV_USER_ID,
          DEV_BALANCE - balance,
          'development top-up',
          'bootstrap',
        );
      }
    } catch (e) {
      this.logger.warn(`Could not top up the development user's token balance: ${(e as Error).message}`);
    }
  }

  private async ensureDefaultProvider(baseUrl: string): Promise<void> {
    const problem = baseUrlProblem(baseUrl);
    if (problem) {
      this.logger.error(`OPENAI_BASE_URL ${problem}; no default provider was set up.`);
      return;
    }
    await this.tenants.ensureTenant(DEFAULT_TENANT_ID, 'Default', DEFAULT_TENANT_SETTINGS);
    if (await this.providerRows.existsBy({ tenantId: DEFAULT_TENANT_ID, baseUrl })) return;
    const listed = await this.listModels(baseUrl);
    const defaultModel = this.config.defaultModel ?? listed[0] ?? FALLBACK_MODEL;
    const ids = [...new Set([defaultModel, ...listed])];
    const name = new URL(baseUrl).host;
    try {
      await this.providers.create(DEFAULT_TENANT_ID, {
        name,
        kind: 'chat_completions',
        base_url: baseUrl,
        api_key: this.config.openaiApiKey ?? PLACEHOLDER_API_KEY,
        default_model: defaultModel,
        models: ids.map((id) => ({ id, context_length: CONTEXT_LENGTH })),
      });
      this.logger.log(
        `Added provider "${name}" (${baseUrl}, default model ${defaultModel}) to tenant "${DEFAULT_TENANT_ID}"`,
      );
    } catch (e) {
      // Another instance starting at the same time, or a provider of that name on another URL.
      this.logger.warn(
        `Could not add the OPENAI_BASE_URL provider to tenant "${DEFAULT_TENANT_ID}": ${(e as Error).message}`,
      );
    }
  }

  /** The model ids the provider lists at `/models`, or none when it cannot be asked. */
  private async listModels(baseUrl: string): Promise<string[]> {
    try {
      const res = await fetch(`${baseUrl.replace(/\/+$/, '')}/models`, {
        headers: { authorization: `Bearer ${this.config.openaiApiKey ?? PLACEHOLDER_API_KEY}` },
        signal: AbortSignal.timeout(MODELS_FETCH_TIMEOUT_MS),
      });
      if (!res.ok) return [];
      const body = (await res.json()) as { data?: unknown };
      if (!Array.isArray(body.data)) return [];
      return body.data
        .map((m: unknown) => (typeof m === 'object' && m !== null ? (m as { id?: unknown }).id : undefined))
        .filter((id): id is string => typeof id === 'string' && id.length > 0 && id.length <= 255)
        .slice(0, MAX_LISTED_MODELS);
    } catch {
      return [];
    }
  }
}
