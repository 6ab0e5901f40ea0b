/**
 * A fully-qualified DNS name as an A/AAAA record owner: 2-127 labels of letters, digits and inner hyphens
 * (underscores refused: they are not valid in host names), a non-numeric top-level label, 253 characters
 * at most. A trailing dot is accepted and dropped; the result is lower-cased.
 */
export function normalizeFqdn(text: string): { ok: true; name: string } | { ok: false; reason: string } {
  let name = text.trim().toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name.length === 0) return { ok: false, reason: 'is empty' };
  if (name.length > 253) return { ok: false, reason: 'is longer than 253 characters' };
  const labels = name.split('.');
  if (labels.length < 2) return { ok: false, reason: 'must have at least two labels, e.g. "gw.example.com"' };
  for (const label of labels) {
    if (label.length === 0) return { ok: false, reason: 'has an empty label' };
    if (label.length > 63) return { ok: false, reason: `has a label longer than 63 characters ("${label.slice(0, 20)}…")` };
    if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(label)) {
      return { ok: false, reason: `has an invalid label "${label}" (letters, digits and inner hyphens only)` };
    }
  }
  if (/^\d+$/.test(labels[labels.length - 1])) return { ok: false, reason: 'ends in a numeric label (an IP address is not a DNS name)' };
  return { ok: true, name };
}
