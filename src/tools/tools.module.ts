import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { CalculatorTool } from './builtin/calculator.tool.js';
import { ClockTool } from './builtin/clock.tool.js';
import { ToolRegistry } from './tool-registry.service.js';
import { ToolRunner } from './tool-runner.service.js';

/**
 * Server-side tools: the registry (every `@Tool()` provider of the application, found at
 * start-up), the runner, and the built-ins. Other modules add tools by listing their own
 * `@Tool()` classes in their own providers; nothing here changes. Needs APP_CONFIG (global).
 */
@Module({
  imports: [DiscoveryModule],
  providers: [ToolRegistry, ToolRunner, ClockTool, CalculatorTool],
  exports: [ToolRegistry, ToolRunner],
})
export class ToolsModule {}
