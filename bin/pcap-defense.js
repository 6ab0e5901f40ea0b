#!/usr/bin/env node
// Runs the compiled CLI (npm run build; npm install builds it). `npm run cli -- ...` runs the TypeScript source instead.
const path = require('node:path');
const entry = path.resolve(__dirname, '..', 'dist', 'src', 'cli', 'index.js');
let cli;
try {
  cli = require(entry);
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND' && e.message.includes(entry)) {
    process.stderr.write(`pcap-defense: ${entry} is missing; run \`npm run build\` in ${path.resolve(__dirname, '..')}.\n`);
    process.exit(1);
  }
  throw e;
}
cli.main();
