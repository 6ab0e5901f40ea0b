import crypto from 'node:crypto';
import { ConfigError, loadConfig } from '../../../src/config/config';
import { HeaderSecretsError, openHeaders, sealHeaders } from '../../../src/modules/ioc-source/header-secrets';

describe('source header values at rest', () => {
  const key = crypto.randomBytes(32);
  const headers = { Authorization: 'Bearer s3cr3t-token', 'X-Api-Key': 'k3y' };

  it('are sealed under the key (a fresh IV each time) and opened with it', () => {
    const a = sealHeaders(headers, key);
    const b = sealHeaders(headers, key);
    expect(a).toMatch(/^aes256gcm:[A-Za-z0-9+/=]+$/);
    expect(a).not.toBe(b);
    for (const secret of ['s3cr3t', 'k3y', 'Authorization']) expect(a).not.toContain(secret);
    expect(openHeaders(a, key)).toEqual(headers);
  });

  it('are stored as given without a key, and rows written before the key was set stay readable', () => {
    const plain = sealHeaders(headers, null);
    expect(plain).toBe(JSON.stringify(headers));
    expect(openHeaders(plain, key)).toEqual(headers);
    expect(openHeaders(plain, null)).toEqual(headers);
  });

  it('refuse to open without the key, under another key, or damaged', () => {
    const sealed = sealHeaders(headers, key);
    expect(() => openHeaders(sealed, null)).toThrow(new HeaderSecretsError("The source's header values are encrypted and IOC_SOURCE_SECRETS_KEY is not set."));
    expect(() => openHeaders(sealed, crypto.randomBytes(32))).toThrow(/cannot be decrypted/);
    const raw = Buffer.from(sealed.slice('aes256gcm:'.length), 'base64');
    raw[raw.length - 1] ^= 1;
    expect(() => openHeaders('aes256gcm:' + raw.toString('base64'), key)).toThrow(/cannot be decrypted/);
  });

  it('take their key from IOC_SOURCE_SECRETS_KEY (64 hex digits); a bad key is refused without being echoed', () => {
    expect(loadConfig({}).iocSources.secretsKey).toBeNull();
    expect(loadConfig({ IOC_SOURCE_SECRETS_KEY: key.toString('hex') }).iocSources.secretsKey).toEqual(key);
    const bad = () => loadConfig({ IOC_SOURCE_SECRETS_KEY: 'short-s3cr3t' });
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(/IOC_SOURCE_SECRETS_KEY.*64 hex digits/);
    expect(bad).not.toThrow(/s3cr3t/);
  });
});
