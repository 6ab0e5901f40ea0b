import 'reflect-metadata';
import fs from 'node:fs';
import path from 'node:path';
import { createSchema, printSchemaFile, SCHEMA_FILE } from '../src/graphql/schema';

// Writes schema/schema.graphql from the code; test/unit/graphql/schema-file.test.ts fails when it is stale.
createSchema()
  .then((schema) => {
    fs.mkdirSync(path.dirname(SCHEMA_FILE), { recursive: true });
    fs.writeFileSync(SCHEMA_FILE, printSchemaFile(schema));
    process.stdout.write(`wrote ${SCHEMA_FILE}\n`);
  })
  .catch((err) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
