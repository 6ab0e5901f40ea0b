#!/usr/bin/env node
// Runs the TypeScript CLI through SWC (decorator metadata on), from any working directory.
const path = require('node:path');
process.env.SWC_NODE_PROJECT = process.env.SWC_NODE_PROJECT || path.resolve(__dirname, '..', 'tsconfig.json');
require('@swc-node/register');
require('../src/cli/index.ts').main();
