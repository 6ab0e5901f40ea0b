// ESLint flat config: eslint's and typescript-eslint's recommended rules; formatting is Prettier's job.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // `_`-prefixed names mark parameters a signature needs but the body does not use.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Off: the parsers and scanners initialise their loop variables where they are declared (one shape for V8,
      // and the reader sees the starting value); the rule reports each such initialiser that a loop overwrites.
      'no-useless-assignment': 'off',
    },
  },
  {
    // tcpdump's text and the wire formats are matched with control characters and runs of spaces on purpose.
    files: ['src/modules/log-upload/parsing/**', 'src/app/multipart.ts'],
    rules: { 'no-control-regex': 'off', 'no-regex-spaces': 'off' },
  },
  {
    // Tests and benchmarks reach into untyped JSON answers and driver internals.
    files: ['test/**', 'bench/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', 'no-control-regex': 'off', 'no-regex-spaces': 'off' },
  },
  {
    // CommonJS entry points and tool configs.
    files: ['**/*.js', '**/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
