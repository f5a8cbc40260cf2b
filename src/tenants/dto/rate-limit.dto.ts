import { ApiProperty } from '@nestjs/swagger';
import { IsInt, Max, Min } from 'class-validator';

export class RateLimitDto {
  @ApiProperty({
    description: 'Requests allowed per window, for the whole tenant.',
    minimum: 1,
    example: 600,
  })
  @IsInt()
  @Min(1)
  @Max(1_000_000_000)
  requests!: number;

  @ApiProperty({ description: 'Window length in seconds.', minimum: 1, maximum: 86400, example: 60 })
  @IsInt()
  @Min(1)
  @Max(86400)
  window_s!: number;
}
