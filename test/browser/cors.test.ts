import type { Browser } from 'playwright-core';
import { createTestApp, ok, TestApp } from '../helpers/app';
import { listen } from '../helpers/raw-http';
import { describeInChromium, launchChromium } from '../helpers/browser';
import { generateCapture } from '../helpers/capture';
import { ModuleServer, startModuleServer } from '../helpers/module-server';

const CAPTURE = generateCapture(3, 2, 1).text.toString();

// A frontend team's page on another origin (another port of 127.0.0.1) calls the API with Apollo Client, as its
// app would: allowed by CORS_ORIGINS it gets answers, otherwise the browser keeps the answer from it.
describeInChromium('CORS from a page on another origin, with Apollo Client, in headless Chromium', () => {
  let api: TestApp;
  let apiServer: { port: number; close(): Promise<void> };
  let allowed: ModuleServer;
  let other: ModuleServer;
  let browser: Browser;
  let device: string;

  const page = () => `<!doctype html><html><head><title>dashboard</title></head><body><script type="module">
import { ApolloClient, HttpLink, InMemoryCache, gql } from '/m/@apollo/client';
const uri = 'http://127.0.0.1:${apiServer.port}/graphql';
const key = ${JSON.stringify(api.keys.admin)};
const client = new ApolloClient({ link: new HttpLink({ uri, headers: { authorization: 'Bearer ' + key } }), cache: new InMemoryCache() });
window.viewer = () => client.query({ query: gql\`query Viewer { viewer { role account { name } } }\` }).then(
  (r) => ({ data: r.data }),
  (e) => ({ error: e.name + ': ' + e.message }),
);
// A file upload as apollo-upload-client sends it: multipart, with the preflight header Apollo's CSRF prevention asks for.
window.upload = async () => {
  const body = new FormData();
  const query = 'mutation($file: Upload!) { logUploadCreate(input: { device: "${device}", file: $file }) { logUpload { fileName size } userErrors { code } } }';
  body.append('operations', JSON.stringify({ query, variables: { file: null } }));
  body.append('map', JSON.stringify({ 0: ['variables.file'] }));
  body.append('0', new Blob([${JSON.stringify(CAPTURE)}]), 'edge.txt');
  try {
    const res = await fetch(uri, { method: 'POST', body, headers: { authorization: 'Bearer ' + key, 'apollo-require-preflight': 'true' } });
    return { status: res.status, requestId: res.headers.get('x-request-id'), body: await res.json() };
  } catch (e) {
    return { error: e.name + ': ' + e.message };
  }
};
window.ready = true;
</script></body></html>`;

  beforeAll(async () => {
    allowed = await startModuleServer({ '/': page });
    other = await startModuleServer({ '/': page });
    api = await createTestApp('sqlite', { CORS_ORIGINS: `https://dash.example.com,${allowed.origin}` });
    apiServer = await listen(api);
    const policy = ok(await api.gql(`mutation { policyCreate(input: { name: "Sensors" }) { policy { id } } }`)).policyCreate.policy.id;
    device = ok(
      await api.gql(
        `mutation($p: ID!) { deviceCreate(input: { nickname: "edge", ipType: STATIC, ipAddress: "93.184.216.34", policy: $p }) { device { id } } }`,
        { p: policy },
      ),
    ).deviceCreate.device.id;
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await apiServer?.close();
    await api?.close();
    await allowed?.close();
    await other?.close();
  });

  async function openDashboard(origin: string) {
    const ctx = await browser.newContext();
    const tab = await ctx.newPage();
    const problems: string[] = [];
    tab.on('pageerror', (err) => problems.push(err.stack ?? String(err)));
    tab.on('console', (msg) => (msg.type() === 'error' ? problems.push(msg.text()) : undefined));
    tab.on('requestfailed', (req) => problems.push(`${req.url()}: ${req.failure()?.errorText}`));
    await tab.goto(`${origin}/`);
    // Apollo Client's modules are loaded one by one: say which failed, if one did.
    await tab.waitForFunction('window.ready === true', undefined, { timeout: 60_000 }).catch((err) => {
      throw new Error(`the page did not load: ${err.message}\n${problems.join('\n')}`);
    });
    return { ctx, tab };
  }

  it('answers a page from an allowed origin: a query through Apollo Client, and an upload', async () => {
    const { ctx, tab } = await openDashboard(allowed.origin);
    try {
      const result: any = await tab.evaluate('window.viewer()');
      expect(result).toEqual({ data: { viewer: { __typename: 'Viewer', role: 'ADMIN', account: { __typename: 'Account', name: 'account-a' } } } });
      const upload: any = await tab.evaluate('window.upload()');
      // Through the preflight and Apollo's CSRF prevention to the resolver, whose answer the page may read.
      expect(upload.status).toBe(200);
      expect(upload.body).toEqual({ data: { logUploadCreate: { logUpload: { fileName: 'edge.txt', size: CAPTURE.length }, userErrors: [] } } });
      expect(upload.requestId).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await ctx.close();
    }
  }, 120_000);

  it('keeps the answer from a page of any other origin', async () => {
    const { ctx, tab } = await openDashboard(other.origin);
    try {
      const result: any = await tab.evaluate('window.viewer()');
      expect(result.data).toBeUndefined();
      expect(result.error).toMatch(/Failed to fetch/);
      const upload: any = await tab.evaluate('window.upload()');
      expect(upload.error).toMatch(/Failed to fetch/);
    } finally {
      await ctx.close();
    }
  }, 120_000);
});
