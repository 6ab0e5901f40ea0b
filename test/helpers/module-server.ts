import fs from 'node:fs';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import path from 'node:path';

const NODE_MODULES = path.resolve(__dirname, '../../node_modules');
/** The export conditions a bundler targeting browsers would pick, in Node's order of preference (first key that matches). */
const CONDITIONS = new Set(['browser', 'module', 'import', 'default']);

export interface ModuleServer {
  origin: string;
  close(): Promise<void>;
}

/**
 * A page origin of its own on 127.0.0.1 that serves `pages` (path -> HTML) and the packages of node_modules as
 * browser ES modules: `/m/<specifier>` redirects to the file the package's exports name, and bare imports inside
 * served files are rewritten to `/m/...`. Enough to run Apollo Client in a page without a bundler.
 */
export async function startModuleServer(pages: Record<string, () => string>): Promise<ModuleServer> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    try {
      const page = pages[url.pathname];
      if (page) return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page());
      if (url.pathname.startsWith('/m/')) {
        return void res.writeHead(302, { location: `/nm/${resolveSpecifier(decodeURIComponent(url.pathname.slice(3)))}` }).end();
      }
      if (url.pathname.startsWith('/nm/')) {
        const file = path.resolve(NODE_MODULES, decodeURIComponent(url.pathname.slice(4)));
        if (!file.startsWith(NODE_MODULES + path.sep)) return void res.writeHead(404).end();
        if (!/\.m?js$/.test(file) || !fs.existsSync(file)) {
          // Extensionless relative imports, as bundlers accept them (rxjs): to the file they mean.
          const found = [`${file}.js`, path.join(file, 'index.js')].find((f) => fs.existsSync(f));
          if (!found) return void res.writeHead(404).end();
          return void res.writeHead(302, { location: `/nm/${path.relative(NODE_MODULES, found).split(path.sep).join('/')}` }).end();
        }
        return void res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(rewriteBareImports(fs.readFileSync(file, 'utf8')));
      }
      res.writeHead(404).end();
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `import x from "pkg/sub"` -> `import x from "/m/pkg/sub"`; relative and absolute imports stay as they are. */
function rewriteBareImports(source: string): string {
  return source.replace(
    /(?<!["'.\w$])(from\s*|import\s*\(?\s*)(["'])([@\w][\w@./-]*)\2/g,
    (_m, head: string, quote: string, spec: string) => `${head}${quote}/m/${spec}${quote}`,
  );
}

/** A bare specifier -> its file's path under node_modules, through the package's `exports` (or `module`/`main`). */
function resolveSpecifier(spec: string): string {
  const parts = spec.split('/');
  const name = spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  const subpath = `.${spec.slice(name.length)}`;
  const pkg = JSON.parse(fs.readFileSync(path.join(NODE_MODULES, name, 'package.json'), 'utf8'));
  let target: string | undefined;
  if (pkg.exports !== undefined) {
    const exportsMap = typeof pkg.exports === 'string' || !Object.keys(pkg.exports).some((k) => k.startsWith('.')) ? { '.': pkg.exports } : pkg.exports;
    target = pickCondition(exportsMap[subpath]);
    if (target === undefined) {
      for (const [key, value] of Object.entries(exportsMap)) {
        const star = key.indexOf('*');
        if (star < 0 || !subpath.startsWith(key.slice(0, star)) || !subpath.endsWith(key.slice(star + 1))) continue;
        const matched = subpath.slice(star, subpath.length - (key.length - star - 1));
        target = pickCondition(value)?.replace('*', matched);
        if (target) break;
      }
    }
  } else {
    target = subpath === '.' ? (pkg.module ?? pkg.main ?? 'index.js') : subpath;
  }
  if (!target) throw new Error(`cannot resolve ${spec} for the browser`);
  return path.posix.join(name, target);
}

function pickCondition(entry: unknown): string | undefined {
  if (typeof entry === 'string') return entry;
  if (Array.isArray(entry)) return pickCondition(entry[0]);
  if (entry && typeof entry === 'object') {
    for (const [condition, value] of Object.entries(entry)) {
      if (!CONDITIONS.has(condition)) continue;
      const picked = pickCondition(value);
      if (picked !== undefined) return picked;
    }
  }
  return undefined;
}
