import express, { Router } from 'express';
import { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { ExplorerMode } from '../config/config';

// altair-static is loaded only when the embedded explorer is on: its module takes a noticeable part of the start.
const loadAltair = () => import('altair-static');

/** Where the embedded explorer's own files (scripts, styles, fonts) are served from. */
export const EXPLORER_ASSETS_PATH = '/explorer';

const FIRST_QUERY = `# Your API key: the Auth tab -> Bearer Token -> pcd_..., then reload the schema
# (the circular arrow beside Docs) to read the docs. Files: Variables (below) -> Add files.
{
  viewer { role account { name } }
}
`;

/**
 * The landing page of GET /graphql for a browser (Apollo serves it to GETs that prefer text/html, before its CSRF
 * check), whatever NODE_ENV is: a browser never meets the CSRF refusal meant for scripts.
 */
export function explorerPlugin(mode: ExplorerMode, graphqlPath: string): ApolloServerPlugin<BaseContext> {
  if (mode === 'sandbox') {
    // Apollo Sandbox comes from Apollo's CDN: it needs the internet. Its telemetry stays off.
    return ApolloServerPluginLandingPageLocalDefault({ embed: { runTelemetry: false }, includeCookies: false, footer: false });
  }
  return {
    async serverWillStart() {
      const html = mode === 'embedded' ? await altairPage(graphqlPath) : offPage(graphqlPath);
      return {
        async renderLandingPage() {
          return { html };
        },
      };
    },
  };
}

/** Altair, rendered once: every script, style and font it loads is under EXPLORER_ASSETS_PATH on this server. */
async function altairPage(graphqlPath: string): Promise<string> {
  const { renderAltair } = await loadAltair();
  return renderAltair({
    baseURL: `${EXPLORER_ASSETS_PATH}/`,
    endpointURL: graphqlPath,
    initialName: 'pcap-defense',
    initialQuery: FIRST_QUERY,
    instanceStorageNamespace: 'pcap-defense:',
    // Apollo's CSRF prevention refuses multipart requests (file uploads) without it; harmless on the others.
    initialHeaders: { 'Apollo-Require-Preflight': 'true' },
    // No sign-in to Altair's cloud, no update or push notices: nothing that calls out of the network.
    disableAccount: true,
    initialSettings: {
      'alert.disableUpdateNotification': true,
      disablePushNotification: true,
      'banners.disable': true,
    },
  });
}

function offPage(graphqlPath: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pcap-defense GraphQL API</title></head>
<body>
<h1>pcap-defense GraphQL API</h1>
<p>The explorer is turned off on this server (<code>GRAPHQL_EXPLORER=off</code>).</p>
<p>The API answers POST requests at this address with an API key, for example:</p>
<pre>curl -s https://&lt;this server&gt;${escapeHtml(graphqlPath)} -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \\
  -d '{"query":"{ viewer { role account { name } } }"}'</pre>
</body></html>
`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The embedded explorer's files, read-only; the pre-request script frame gets the sandbox CSP Altair asks for. */
export async function explorerAssets(): Promise<Router> {
  const { getDistDirectory, isSandboxFrame, SANDBOX_FRAME_CSP } = await loadAltair();
  const router = Router();
  router.use(
    EXPLORER_ASSETS_PATH,
    (req, res, next) => {
      if (isSandboxFrame(req.path)) res.setHeader('Content-Security-Policy', SANDBOX_FRAME_CSP);
      next();
    },
    express.static(getDistDirectory(), { index: false, fallthrough: true, maxAge: '1h' }),
  );
  return router;
}
