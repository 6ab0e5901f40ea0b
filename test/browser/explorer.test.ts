import type { Browser, Page } from 'playwright-core';
import request from 'supertest';
import { createTestApp, ok, TestApp } from '../helpers/app';
import { listen } from '../helpers/raw-http';
import { describeInChromium, launchChromium, recordRequestsLeavingLoopback } from '../helpers/browser';
import { generateCapture } from '../helpers/capture';
import { processQueued } from '../helpers/ingest';
import { captureLog } from '../helpers/logs';

// The embedded explorer (Altair from altair-static) as an analyst on an isolated network uses it: every file it
// loads comes from this server, and a query, the schema docs and a file upload work with an API key.
describeInChromium('embedded explorer in headless Chromium', () => {
  let t: TestApp;
  let server: { port: number; close(): Promise<void> };
  let browser: Browser;

  beforeAll(async () => {
    t = await createTestApp('sqlite');
    server = await listen(t);
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await t?.close();
  });

  /** Replaces the text of a CodeMirror editor; insertText types no keys, so no bracket is closed for us. */
  async function setEditor(page: Page, selector: string, text: string): Promise<void> {
    const editor = page.locator(selector).first();
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText(text);
  }

  it('runs a query and the schema docs with an API key, and uploads a capture, with no request leaving 127.0.0.1', async () => {
    const policy = ok(await t.gql(`mutation { policyCreate(input: { name: "Sensors" }) { policy { id } } }`)).policyCreate.policy.id;
    const device = ok(
      await t.gql(`mutation($p: ID!) { deviceCreate(input: { nickname: "edge", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }`, {
        p: policy,
      }),
    ).deviceCreate.device.id;
    const capture = generateCapture(7, 5, 2).text;

    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const outside = await recordRequestsLeavingLoopback(ctx);
    const graphqlPosts: Array<{ authorization?: string; contentType?: string }> = [];
    ctx.on('request', (req) => {
      if (req.method() === 'POST' && new URL(req.url()).pathname === '/graphql') {
        graphqlPosts.push({ authorization: req.headers()['authorization'], contentType: req.headers()['content-type'] });
      }
    });
    const page = await ctx.newPage();
    // Each step fails on its own (a click Playwright cannot make would wait forever), slowly on a shared machine.
    page.setDefaultTimeout(30_000);
    try {
      const base = `http://127.0.0.1:${server.port}`;
      const landing = await page.goto(`${base}/graphql`);
      expect(landing?.status()).toBe(200);
      expect(await page.title()).toBe('Altair');

      // The key, as an analyst gives it: Auth tab, Bearer Token.
      await page.getByText('Auth', { exact: true }).click();
      await page.locator('app-authorization-editor nz-select').click();
      await page.locator('nz-option-item', { hasText: 'Bearer Token' }).click();
      await setEditor(page, 'app-authorization-bearer .cm-content', t.keys.admin);

      // Schema docs: introspection needs the key too.
      await page.locator('[track-id="reload_docs"]').click();
      await page.locator('[track-id="show_docs"]').click();
      await page.locator('app-doc-viewer').getByText('Query', { exact: true }).first().click();
      await page.locator('app-doc-viewer').getByText('The caller: account, API key and role.').first().waitFor({ timeout: 30_000 });

      // A query.
      await page.getByText('Query', { exact: true }).first().click();
      await setEditor(page, 'app-query-editor .cm-content', '{ viewer { role account { name } } }');
      await page.locator('[track-id="set_request"]').click();
      await page.locator('app-query-result').getByText('"account-a"').waitFor({ timeout: 30_000 });

      // A capture uploaded through the variables pane's file picker, as the multipart request spec carries it.
      await setEditor(
        page,
        'app-query-editor .cm-content',
        `mutation($file: Upload!) { logUploadCreate(input: { device: "${device}", file: $file }) { logUpload { id fileName size } userErrors { code message } } }`,
      );
      await page.getByText('Variables', { exact: true }).click();
      await page.locator('.variables-add-files-button').click();
      await page.locator('input[data-tid="file_name"]').fill('file');
      await page.locator('input.variables-file-item-input').setInputFiles({ name: 'edge.txt', mimeType: 'text/plain', buffer: capture });
      await page.locator('[track-id="set_request"]').click();
      await page.locator('app-query-result').getByText('"edge.txt"').waitFor({ timeout: 30_000 });
      const result = await page.locator('app-query-result').innerText();
      expect(result).toContain(`"size": ${capture.length}`);

      // Stored and processed like any upload.
      await processQueued(t.services);
      const uploads = ok(await t.gql(`{ logUploads(first: 5) { edges { node { fileName size status packetLines } } } }`)).logUploads.edges;
      expect(uploads).toEqual([
        { node: { fileName: 'edge.txt', size: capture.length, status: 'COMPLETED', packetLines: capture.toString().trim().split('\n').length } },
      ]);

      expect(graphqlPosts.some((p) => p.contentType?.startsWith('multipart/form-data'))).toBe(true);
      expect(graphqlPosts.length).toBeGreaterThanOrEqual(3);
      for (const post of graphqlPosts.slice(-2)) expect(post.authorization).toBe(`Bearer ${t.keys.admin}`);
      expect(outside).toEqual([]);
    } finally {
      await ctx.close();
    }
  }, 180_000);

  it('(the recorder of the test above sees what Apollo Sandbox loads from the internet)', async () => {
    const sandbox = await createTestApp('sqlite', { GRAPHQL_EXPLORER: 'sandbox' });
    const sandboxServer = await listen(sandbox);
    const ctx = await browser.newContext();
    try {
      const outside = await recordRequestsLeavingLoopback(ctx);
      await (await ctx.newPage()).goto(`http://127.0.0.1:${sandboxServer.port}/graphql`);
      expect(outside.some((url) => new URL(url).hostname.endsWith('apollographql.com'))).toBe(true);
    } finally {
      await ctx.close();
      await sandboxServer.close();
      await sandbox.close();
    }
  }, 120_000);
});

describe('GET /graphql in a browser, by GRAPHQL_EXPLORER', () => {
  const html = (app: TestApp) => request(app.http.app).get('/graphql').set('accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8');

  it.each([
    ['embedded', 'development', /<title>Altair<\/title>/],
    ['embedded', 'production', /<title>Altair<\/title>/],
    ['sandbox', 'production', /embeddable-sandbox/],
    ['off', 'development', /explorer is turned off/],
    ['off', 'production', /explorer is turned off/],
  ])('%s with NODE_ENV=%s: an HTML page, never the CSRF refusal', async (mode, nodeEnv, expected) => {
    const app = await createTestApp('sqlite', { GRAPHQL_EXPLORER: mode, NODE_ENV: nodeEnv });
    try {
      const page = await html(app);
      expect(page.status).toBe(200);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(page.text).toMatch(expected);
      expect(page.text).not.toMatch(/Cross-Site Request Forgery/);
    } finally {
      await app.close();
    }
  });

  it("serves the embedded explorer's files only when it is on, logged at debug under one route", async () => {
    const log = captureLog('trace');
    const on = await createTestApp('sqlite', {}, { logger: log.logger });
    const off = await createTestApp('sqlite', { GRAPHQL_EXPLORER: 'sandbox' });
    try {
      const script = await request(on.http.app).get('/explorer/main.js');
      expect(script.status).toBe(200);
      expect(script.headers['content-type']).toMatch(/javascript/);
      // Altair's pre-request script frame runs sandboxed.
      const frame = await request(on.http.app).get('/explorer/iframe-sandbox/index.html');
      expect(frame.status).toBe(200);
      expect(frame.headers['content-security-policy']).toBe('sandbox allow-scripts');
      expect((await request(off.http.app).get('/explorer/main.js')).status).toBe(404);
      // Some sixty files a page load: one route in logs and metrics, and no info lines.
      expect(
        log
          .events('http.request')
          .filter((l) => l.route === '/explorer')
          .map((l) => l.level),
      ).toEqual([20, 20]);
    } finally {
      await on.close();
      await off.close();
    }
  });

  it('turns Sandbox telemetry off', async () => {
    const app = await createTestApp('sqlite', { GRAPHQL_EXPLORER: 'sandbox' });
    try {
      const page = await html(app);
      expect(page.text).toMatch(/"runTelemetry":false/);
    } finally {
      await app.close();
    }
  });
});
