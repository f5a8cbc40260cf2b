// The data source for the TypeORM CLI (`npm run migration:run`). It needs DATABASE_URL: the
// embedded database runs inside the app, which applies the same migrations at start-up.
import 'dotenv/config';
import { DataSource } from 'typeorm';
import { buildDataSourceOptions } from './src/database/data-source-options.js';

const url = process.env.DATABASE_URL;
if (!url) throw new Error('DATABASE_URL is required for the migration CLI (the app migrates PGlite itself).');

export default new DataSource(buildDataSourceOptions({ url, embedded: false }));
