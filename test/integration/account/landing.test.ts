import request from 'supertest';
import { createTestApp } from '../../helpers/app';

describe('explorer landing page and introspection', () => {
  it('serves the embedded explorer and introspection (with a key) outside production', async () => {
    const t = await createTestApp('sqlite');
    try {
      const page = await request(t.http.app).get('/graphql').set('accept', 'text/html');
      expect(page.status).toBe(200);
      expect(page.text).toMatch(/AltairGraphQL\.init/);
      const intro = await t.gql(`{ __schema { queryType { name description } } }`);
      expect(intro.data.__schema.queryType.name).toBe('Query');
    } finally {
      await t.close();
    }
  });

  it('turns introspection off in production unless GRAPHQL_INTROSPECTION is set; the explorer follows GRAPHQL_EXPLORER alone', async () => {
    const prod = await createTestApp('sqlite', { NODE_ENV: 'production' });
    try {
      const page = await request(prod.http.app).get('/graphql').set('accept', 'text/html');
      expect(page.text).toMatch(/AltairGraphQL\.init/);
      const intro = await prod.gql(`{ __schema { queryType { name } } }`);
      expect(intro.errors?.[0].extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(intro.errors?.[0].message).not.toMatch(/Did you mean/);
    } finally {
      await prod.close();
    }
    const allowed = await createTestApp('sqlite', { NODE_ENV: 'production', GRAPHQL_INTROSPECTION: 'true' });
    try {
      expect((await allowed.gql(`{ __schema { queryType { name } } }`)).data.__schema.queryType.name).toBe('Query');
    } finally {
      await allowed.close();
    }
  });
});
