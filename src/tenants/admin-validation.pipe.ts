import { Injectable, ValidationPipe, type ArgumentMetadata, type ValidationError } from '@nestjs/common';
import { ParleyError } from '../common/errors/parley-error.js';
import { UNPARSABLE_BODY, unparsableBody } from '../common/http/http-hooks.js';

/** The first failing property of a validation tree, as a path (`models[0].context_length`) and a message. */
export function firstValidationFailure(
  errors: ValidationError[],
  parent = '',
): { param: string; message: string } | null {
  for (const error of errors) {
    const segment = /^\d+$/.test(error.property) ? `[${error.property}]` : error.property;
    const path =
      parent === '' ? segment : segment.startsWith('[') ? `${parent}${segment}` : `${parent}.${segment}`;
    const messages = Object.values(error.constraints ?? {});
    if (messages.length > 0) {
      // class-validator runs a property's decorators bottom-up, so the last message is the first
      // declared: the type check ("must be an integer") rather than a bound a wrong type also fails.
      // (Hence every check runs: stopping at the first failure would keep the bound's message.)
      const raw = messages.at(-1)!;
      // class-validator words its messages with the bare property name; name the full path instead.
      const message = raw.startsWith(`${error.property} `)
        ? `${path}${raw.slice(error.property.length)}`
        : raw;
      return { param: path, message };
    }
    const nested = firstValidationFailure(error.children ?? [], path);
    if (nested) return nested;
  }
  return null;
}

/**
 * class-validator DTOs for the admin API: unknown properties are refused, values transformed to
 * the DTO types, and the first failure answered as 400 `invalid_value` naming the field.
 */
@Injectable()
export class AdminValidationPipe extends ValidationPipe {
  constructor() {
    super({
      transform: true,
      whitelist: true,
      forbidNonWhitelisted: true,
      forbidUnknownValues: true,
      validationError: { target: false, value: false },
      exceptionFactory: (errors: ValidationError[]) => {
        const failure = firstValidationFailure(errors);
        return failure
          ? ParleyError.invalid(failure.param, failure.message)
          : new ParleyError('invalid_request_error', 'The request body is not valid.');
      },
    });
  }

  override transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (value === UNPARSABLE_BODY) throw unparsableBody();
    return super.transform(value, metadata) as Promise<unknown>;
  }
}
