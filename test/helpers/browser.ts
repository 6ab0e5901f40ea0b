import fs from 'node:fs';
import type { Browser, BrowserContext } from 'playwright-core';

/** Debian's Chromium (`apt-get install chromium`); .ci/run installs it. Playwright downloads no browser of its own. */
export const CHROMIUM_PATH = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

/**
 * describe() for tests that drive headless Chromium. Without Chromium they are skipped with a message, except
 * under CI=true, where a missing browser must fail the run rather than pass it untested.
 */
export function describeInChromium(name: string, fn: () => void): void {
  if (!fs.existsSync(CHROMIUM_PATH) && process.env.CI !== 'true') {
    console.warn(`${name}: SKIPPED, ${CHROMIUM_PATH} is missing (apt-get install -y chromium; CI installs it and never skips)`);
    describe.skip(name, fn);
    return;
  }
  describe(name, fn);
}

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM_PATH)) throw new Error(`headless Chromium is required (CI=true): ${CHROMIUM_PATH} is missing; apt-get install -y chromium`);
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
}

/**
 * Every request the context's pages make to a host other than 127.0.0.1 is recorded and aborted (so a test can
 * assert the list is empty: nothing left the machine). WebSockets are recorded too.
 */
export async function recordRequestsLeavingLoopback(ctx: BrowserContext): Promise<string[]> {
  const outside: string[] = [];
  const leaves = (url: string) => {
    const u = new URL(url);
    return (u.protocol === 'http:' || u.protocol === 'https:' || u.protocol === 'ws:' || u.protocol === 'wss:') && u.hostname !== '127.0.0.1';
  };
  await ctx.route('**/*', (route) => {
    const url = route.request().url();
    if (leaves(url)) {
      outside.push(url);
      return route.abort('blockedbyclient');
    }
    return route.continue();
  });
  // Requests the router does not see (a worker's, a service worker's) still raise the context's request event.
  ctx.on('request', (req) => {
    if (leaves(req.url()) && !outside.includes(req.url())) outside.push(req.url());
  });
  ctx.on('page', (page) => page.on('websocket', (ws) => (leaves(ws.url()) ? outside.push(ws.url()) : undefined)));
  return outside;
}
