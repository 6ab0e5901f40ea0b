/** Escapes LIKE wildcards so user text matches literally (used with `ESCAPE '\\'`). */
export function likeContains(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** Trims and folds to a case-insensitive uniqueness key. */
export function foldKey(text: string): string {
  return text.trim().toLowerCase();
}
