// Which parser reads a fetched body. Pure: looks at the first bytes only.

import { IocSourceFormat } from './ioc-source.enums';

/** `JSON`: a JSON document whose structured format is known once it is parsed (see structured-feed.ts). */
export type DetectedFormat = { ok: true; format: Exclude<IocSourceFormat, IocSourceFormat.AUTO> | 'JSON' } | { ok: false; reason: string };

/**
 * Resolves AUTO from the start of the (decompressed) body, and refuses what no format reads whatever was
 * asked: an HTML page (a login or error page served with 200) would otherwise be a feed with no entries, and
 * a REPLACE with it would empty the list.
 */
export function detectFormat(head: Buffer, asked: IocSourceFormat, contentType: string | null): DetectedFormat {
  let text = head.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const start = text.trimStart().slice(0, 512).toLowerCase();
  if (/^<!doctype html|^<html|^<head|^<body/.test(start) || (/text\/html/i.test(contentType ?? '') && start.startsWith('<'))) {
    return { ok: false, reason: 'The source answered an HTML page, not a feed (a login, error or landing page?).' };
  }
  if (asked !== IocSourceFormat.AUTO) return { ok: true, format: asked };
  if (start.startsWith('{') || start.startsWith('[')) return { ok: true, format: 'JSON' };
  if (start.startsWith('<')) return { ok: false, reason: 'Unknown format: an XML or markup document, not a feed.' };
  if (head.includes(0)) return { ok: false, reason: 'Unknown format: binary data, not a text feed.' };
  return { ok: true, format: IocSourceFormat.TEXT };
}
