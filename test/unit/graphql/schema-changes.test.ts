import fs from 'node:fs';
import path from 'node:path';
import { createSchema, printSchemaFile } from '../../../src/graphql/schema';
import { breakingChanges, unmentioned, unreleasedSection } from '../../helpers/schema-changes';

// The schema the code builds, against schema/schema.previous.graphql: a committed copy of the schema clients
// were last given (the last release; before the first, main as it was when the changelog began). A file, not
// `git show <ref>:schema/schema.graphql`: any clone has it, shallow or not, and no ref must be guessed (on main,
// HEAD~1 already has a change one commit later and the merge-base is HEAD itself).
// A breaking change must be named, by its schema coordinate, in CHANGELOG.md's [Unreleased] section.
// At a release: the [Unreleased] notes get the version, and schema.graphql is copied over schema.previous.graphql.
const ROOT = path.resolve(__dirname, '../../..');
const BASELINE = path.join(ROOT, 'schema/schema.previous.graphql');
const CHANGELOG = path.join(ROOT, 'CHANGELOG.md');

describe('breaking schema changes', () => {
  it('are each named in CHANGELOG.md under [Unreleased]', async () => {
    const current = printSchemaFile(await createSchema());
    const breaking = await breakingChanges(fs.readFileSync(BASELINE, 'utf8'), current);
    const section = unreleasedSection(fs.readFileSync(CHANGELOG, 'utf8'));
    expect(section).not.toBeNull();
    expect(unmentioned(breaking, section ?? '').map((c) => `${c.path ?? ''}: ${c.message}`)).toEqual([]);
  });

  describe('the check', () => {
    const before = 'type Query {\n  upload: Upload\n}\ntype Upload {\n  size: Float!\n  name: String!\n  attempts: Int!\n}\n';
    const after = 'type Query {\n  upload: Upload\n}\ntype Upload {\n  size: Int!\n  attempts: Int!\n  attemptsLeft: Int!\n}\n';

    it('finds type changes and removals, and not additions', async () => {
      const breaking = await breakingChanges(before, after);
      expect(breaking.map((c) => c.path).sort()).toEqual(['Upload.name', 'Upload.size']);
    });

    it('wants each by its coordinate, in [Unreleased] only', async () => {
      const breaking = await breakingChanges(before, after);
      const changelog = (unreleased: string) => `# Changelog\n\n## [Unreleased]\n\n${unreleased}\n## [0.1.0] - 2026-01-01\n\n- \`Upload.name\` added.\n`;
      const missing = (unreleased: string) => unmentioned(breaking, unreleasedSection(changelog(unreleased)) ?? '').map((c) => c.path);
      expect(missing('### Changed\n- `Upload.size` is Int.\n')).toEqual(['Upload.name']);
      expect(missing('### Changed\n- `Upload.sizes` and Upload.size2 are Int.\n').sort()).toEqual(['Upload.name', 'Upload.size']);
      expect(missing('### Changed\n- `Upload.size` is Int.\n### Removed\n- Upload.name, unused.\n')).toEqual([]);
    });

    it('needs an [Unreleased] section', () => {
      expect(unreleasedSection('# Changelog\n\n## [0.1.0] - 2026-01-01\n- first\n')).toBeNull();
      expect(unreleasedSection('# Changelog\n\n## [Unreleased]\n- last\n')).toBe('- last\n');
    });
  });
});
