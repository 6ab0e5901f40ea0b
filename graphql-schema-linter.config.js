// graphql-schema-linter over the committed SDL (the schema-file test keeps it equal to what the code builds).
// Run by test/unit/graphql/schema-lint.test.ts and `npm run schema:lint`. Every built-in rule of the pinned
// version runs except those under `disabled`, each with its reason; the test fails when the linter has a rule
// that is in neither list, so an upgrade cannot add or drop one unnoticed.

const disabled = {
  // The four ordering rules check the printer, not the API: schema.graphql is printed in graphql-js's
  // lexicographicSortSchema order, whatever order the code declares. That order is natural (LAST_7_DAYS before
  // LAST_24_HOURS) where these rules compare code points, so they can only ever report a numbered name.
  'enum-values-sorted-alphabetically': 'the SDL is sorted by graphql-js (natural order: LAST_7_DAYS before LAST_24_HOURS), not by us',
  'type-fields-sorted-alphabetically': 'the SDL is sorted by graphql-js, not by us',
  'input-object-fields-sorted-alphabetically': 'the SDL is sorted by graphql-js, not by us',
  'interface-fields-sorted-alphabetically': 'the SDL is sorted by graphql-js, not by us',
};

const enabled = [
  'arguments-have-descriptions',
  'defined-types-are-used',
  'deprecations-have-a-reason',
  'descriptions-are-capitalized',
  'enum-values-all-caps',
  'enum-values-have-descriptions',
  'fields-are-camel-cased',
  'fields-have-descriptions',
  'input-object-values-are-camel-cased',
  'input-object-values-have-descriptions',
  'relay-connection-arguments-spec',
  'relay-connection-types-spec',
  'relay-page-info-spec',
  'types-are-capitalized',
  'types-have-descriptions',
];

module.exports = {
  schemaPaths: ['schema/schema.graphql'],
  rules: enabled,
  // Not read by the linter: the test checks it against the linter's rule files.
  disabled,
};
