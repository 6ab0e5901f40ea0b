import { createConnection } from 'mysql2/promise';

/** A benchmark's own MySQL database, created empty on the server at `serverUrl`; returns its URL. */
export async function freshMysqlDatabase(serverUrl: string, name: string): Promise<string> {
  const conn = await createConnection({ uri: serverUrl });
  await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
  await conn.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  await conn.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function dropMysqlDatabase(serverUrl: string, name: string): Promise<void> {
  const conn = await createConnection({ uri: serverUrl });
  await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
  await conn.end();
}
