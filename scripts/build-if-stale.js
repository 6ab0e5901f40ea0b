#!/usr/bin/env node
// `npm start` runs this first: it compiles (tsc -b tsconfig.build.json) only when dist/ is missing or a
// source is newer than the last build, so a fresh clone starts with one command and a restart pays no
// compiler start-up.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const stamp = path.join(root, 'dist', '.build-stamp');
const inputs = ['src', 'migrations', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json'];

/** The newest modification time under `p` (a file or a directory tree), 0 when it does not exist. */
function newest(p) {
  let st;
  try {
    st = fs.statSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  // A directory's own mtime changes when a file in it is added, removed or renamed.
  return fs.readdirSync(p).reduce((max, name) => Math.max(max, newest(path.join(p, name))), st.mtimeMs);
}

// An installed package carries dist/ and no sources: nothing to compile.
if (!fs.existsSync(path.join(root, 'src'))) process.exit(0);

let built = 0;
try {
  built = fs.statSync(stamp).mtimeMs;
} catch {
  built = 0;
}
if (built && Math.max(...inputs.map((p) => newest(path.join(root, p)))) < built && fs.existsSync(path.join(root, 'dist/src/main.js'))) process.exit(0);

process.stderr.write('pcap-defense: compiling to dist/ (npm run build)\n');
const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
const r = spawnSync(process.execPath, [tsc, '-b', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
fs.writeFileSync(stamp, `${new Date().toISOString()}\n`);
