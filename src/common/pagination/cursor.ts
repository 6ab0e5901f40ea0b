/**
 * Opaque keyset cursors: base64url of a tagged JSON array of the sort key values of the last row seen.
 * The tag names the ordering so a cursor from one ordering is refused by another instead of skipping rows.
 */
export type CursorValue = string | number;

export function encodeCursor(tag: string, values: CursorValue[]): string {
  return Buffer.from(JSON.stringify([tag, ...values]), 'utf8').toString('base64url');
}

/** Null when the cursor is not one we issued for this ordering. */
export function decodeCursor(cursor: string, tag: string, arity: number): CursorValue[] | null {
  if (typeof cursor !== 'string' || cursor.length === 0 || cursor.length > 512 || !/^[A-Za-z0-9_-]+$/.test(cursor)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (!Array.isArray(parsed) || parsed.length !== arity + 1 || parsed[0] !== tag) return null;
  const values = parsed.slice(1);
  return values.every((v) => (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'string') ? (values as CursorValue[]) : null;
}
