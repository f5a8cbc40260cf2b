import { Controller, Get, HttpStatus, Inject, Res, ServiceUnavailableException } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import {
  HealthCheckService,
  HealthIndicatorService,
  TypeOrmHealthIndicator,
  type HealthCheckResult,
  type HealthIndicatorResult,
} from '@nestjs/terminus';
import type { FastifyReply } from 'fastify';
import { Public } from '../common/context/public.decorator.js';
import { ParleyError } from '../common/errors/parley-error.js';
import { STORE, type Store } from '../store/store.port.js';

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: TypeOrmHealthIndicator,
    private readonly indicators: HealthIndicatorService,
    @Inject(STORE) private readonly store: Store,
  ) {}

  @Public()
  @Get()
  @ApiOkResponse({ description: 'The process is up.' })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Public()
  @Get('ready')
  @ApiOkResponse({ description: 'The database and the store answer.' })
  @ApiServiceUnavailableResponse({
    description: 'The database or the store does not answer (OpenAI error envelope plus details).',
  })
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthCheckResult | object> {
    try {
      return await this.health.check([
        () => this.db.pingCheck('database', { timeout: 1500 }),
        () => this.storeCheck(),
      ]);
    } catch (e) {
      if (!(e instanceof ServiceUnavailableException)) throw e;
      const result = e.getResponse() as HealthCheckResult;
      const down = Object.keys(result.error ?? {}).join(', ');
      reply.status(HttpStatus.SERVICE_UNAVAILABLE);
      const error = new ParleyError('service_unavailable', `Not ready: ${down} unavailable`);
      return { error: error.toBody(), status: result.status, details: result.details };
    }
  }

  private async storeCheck(): Promise<HealthIndicatorResult> {
    const indicator = this.indicators.check('store');
    try {
      await this.store.ping();
      return indicator.up({ kind: this.store.kind });
    } catch (e) {
      return indicator.down({ kind: this.store.kind, message: (e as Error).message });
    }
  }
}
