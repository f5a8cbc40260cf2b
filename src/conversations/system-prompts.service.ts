import { Injectable } from '@nestjs/common';
import type { TenantContext } from '../common/context/request-context.js';
import { ParleyError } from '../common/errors/parley-error.js';
import { toSystemPromptDto } from './conversation.mapper.js';
import { ConversationsRepository } from './conversations.repository.js';
import type {
  CreateSystemPromptDto,
  SystemPromptDto,
  SystemPromptListDto,
  UpdateSystemPromptDto,
} from './dto/system-prompt.dto.js';

function promptNotFound(): ParleyError {
  return ParleyError.notFound('System prompt');
}

/** The caller's saved system prompts (per tenant and user). */
@Injectable()
export class SystemPromptsService {
  constructor(private readonly repo: ConversationsRepository) {}

  async create(ctx: TenantContext, dto: CreateSystemPromptDto): Promise<SystemPromptDto> {
    return toSystemPromptDto(await this.repo.createPrompt(ctx, dto.name, dto.content));
  }

  async list(ctx: TenantContext): Promise<SystemPromptListDto> {
    return { object: 'list', data: (await this.repo.listPrompts(ctx)).map(toSystemPromptDto) };
  }

  async get(ctx: TenantContext, promptId: string): Promise<SystemPromptDto> {
    const prompt = await this.repo.findPrompt(ctx, promptId);
    if (!prompt) throw promptNotFound();
    return toSystemPromptDto(prompt);
  }

  async update(ctx: TenantContext, promptId: string, dto: UpdateSystemPromptDto): Promise<SystemPromptDto> {
    const prompt = await this.repo.updatePrompt(ctx, promptId, { name: dto.name, content: dto.content });
    if (!prompt) throw promptNotFound();
    return toSystemPromptDto(prompt);
  }

  async delete(ctx: TenantContext, promptId: string): Promise<void> {
    if (!(await this.repo.deletePrompt(ctx, promptId))) throw promptNotFound();
  }
}
