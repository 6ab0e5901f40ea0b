/**
 * A lower-cased `%text%` pattern whose wildcards match literally. Use with `LIKE_ESCAPE`: '!' rather than
 * backslash, which MySQL string literals would swallow.
 */
export function likeContains(text: string): string {
  return `%${text.toLowerCase().replace(/[!%_]/g, (c) => `!${c}`)}%`;
}

export const LIKE_ESCAPE = "ESCAPE '!'";

/** Trims and folds to a case-insensitive uniqueness key. */
export function foldKey(text: string): string {
  return text.trim().toLowerCase();
}
