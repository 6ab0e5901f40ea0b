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

/**
 * The first `max` UTF-16 units of `text`, one fewer when the cut would split a surrogate pair: `slice` alone leaves
 * half a character, which SQLite stores as invalid UTF-8 and MySQL as U+FFFD, so the two databases would disagree.
 */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}
