import crypto from 'node:crypto';

/**
 * A source's header values at rest (#21): with IOC_SOURCE_SECRETS_KEY, AES-256-GCM under that key
 * (`aes256gcm:` and base64 of IV, tag and ciphertext); without it, the JSON as given. Rows written before
 * the key was set stay readable and are sealed on their next change.
 */
const PREFIX = 'aes256gcm:';

export class HeaderSecretsError extends Error {}

export function sealHeaders(headers: Record<string, string>, key: Buffer | null): string {
  const json = JSON.stringify(headers);
  if (!key) return json;
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(json, 'utf8'), cipher.final()]);
  return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
}

export function openHeaders(stored: string, key: Buffer | null): Record<string, string> {
  if (!stored.startsWith(PREFIX)) return JSON.parse(stored) as Record<string, string>;
  if (!key) throw new HeaderSecretsError("The source's header values are encrypted and IOC_SOURCE_SECRETS_KEY is not set.");
  const raw = Buffer.from(stored.slice(PREFIX.length), 'base64');
  try {
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')) as Record<string, string>;
  } catch {
    throw new HeaderSecretsError("The source's header values cannot be decrypted with IOC_SOURCE_SECRETS_KEY (another key, or a damaged row).");
  }
}
