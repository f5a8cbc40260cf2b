import { SetMetadata } from '@nestjs/common';

export const IS_PUBLIC = 'parley:isPublic';

/** Marks a route as reachable without a token, on purpose (every other route is guarded). */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC, true);
