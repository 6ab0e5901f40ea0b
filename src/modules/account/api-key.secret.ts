import crypto from 'node:crypto';

const TOKEN_PREFIX = 'pcd_';

/** A new secret: 256 random bits, recognisable by its `pcd_` prefix (so secret scanners can find leaked keys). */
export function generateSecret(): string {
  return TOKEN_PREFIX + crypto.randomBytes(32).toString('base64url');
}

/** SHA-256 is enough for 256-bit random secrets: there is nothing to brute-force, and lookups stay one indexed read. */
export function hashSecret(secret: string): string {
  return crypto.createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function secretPrefix(secret: string): string {
  return secret.slice(0, 12);
}

/** Cheap shape check before touching the database. */
export function looksLikeSecret(value: string): boolean {
  return /^pcd_[A-Za-z0-9_-]{43}$/.test(value);
}
