import 'reflect-metadata';
import { loadConfig } from './src/config/config';
import { createDataSource } from './src/db/data-source';

// Only for the TypeORM CLI (npm run typeorm -- migration:show).
export default createDataSource(loadConfig().database);
