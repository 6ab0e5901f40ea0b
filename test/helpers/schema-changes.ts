import { buildSchema } from 'graphql';
import { Change, CriticalityLevel, diff } from '@graphql-inspector/core';

/** What @graphql-inspector/core calls breaking between two SDL texts (a client written for the first may fail). */
export async function breakingChanges(previousSdl: string, currentSdl: string): Promise<Change[]> {
  const changes = await diff(buildSchema(previousSdl), buildSchema(currentSdl));
  return changes.filter((c) => c.criticality.level === CriticalityLevel.Breaking);
}

/** The text of the `## [Unreleased]` section of a Keep a Changelog file; null when it has none. */
export function unreleasedSection(changelog: string): string | null {
  const match = /^## \[Unreleased\][^\n]*\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(changelog);
  return match ? match[1] : null;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The breaking changes the section does not name: each must appear by its schema coordinate
 * (`LogUpload.attempts`, `SkipReason.NOT_IP`, `Device`) as a whole name; a change without a coordinate by its message.
 */
export function unmentioned(changes: Change[], section: string): Change[] {
  return changes.filter((c) => {
    if (!c.path) return !section.includes(c.message);
    return !new RegExp(`(^|[^\\w.])${escapeRegExp(c.path)}(?![\\w])`).test(section);
  });
}
