import { config as loadDotenv } from 'dotenv';
import 'reflect-metadata';
import { createParleyApp, listen } from './app.factory.js';
import { ConfigError, loadConfig } from './config/app-config.js';

async function main(): Promise<void> {
  loadDotenv({ quiet: true });
  let config;
  try {
    config = loadConfig(process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(1);
    }
    throw e;
  }
  const app = await createParleyApp(config);
  await listen(app, config.port, config.host);
  process.stdout.write(`[INFO] Parley listening on http://localhost:${config.port} (docs at /docs)\n`);
}

void main();
