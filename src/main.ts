import { config as loadDotenv } from 'dotenv';
import 'reflect-metadata';
import { announceListening, isClusterPrimary, runPrimary, serveConfig } from './cluster/cluster.js';
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
  if (isClusterPrimary(config)) return runPrimary(config);
  // Loaded here, not above: the cluster's primary only forks and never needs Nest.
  const { createParleyApp, listen } = await import('./app.factory.js');
  const app = await createParleyApp(serveConfig(config));
  announceListening(config, await listen(app, config.port, config.host));
}

void main();
