// Lint: the recommended sets of ESLint and typescript-eslint, plus the rules that keep
// the house style (STYLE.md): no floating promises (with type information), no console and no I/O
// in pure parts. The layering itself is checked by dependency-cruiser (.dependency-cruiser.cjs).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'web/vendor/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        Buffer: 'readonly',
        AbortController: 'readonly',
        fetch: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // The dashboard: plain ES modules for the browser (no build step).
    files: ['web/**/*.js'],
    languageOptions: {
      globals: {
        window: 'readonly',
        document: 'readonly',
        location: 'readonly',
        navigator: 'readonly',
        sessionStorage: 'readonly',
        performance: 'readonly',
        addEventListener: 'readonly',
        removeEventListener: 'readonly',
        CustomEvent: 'readonly',
        URLSearchParams: 'readonly',
        TextDecoderStream: 'readonly',
      },
    },
  },
  {
    // A promise nobody awaits loses its rejection: in the agent loop, the server or the simulator
    // that is a step that failed with nothing reported, or an unhandled rejection that ends the
    // process. These rules need the type checker (projectService reads tsconfig.json), so they
    // cover the TypeScript files of tsconfig.json; fire-and-forget is written `void p` with a
    // comment saying why, misused promises are async callbacks where a void callback is expected
    // (an async listener whose rejection no one sees).
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's test()/describe()/it() return a promise that the runner itself awaits.
          // Caveat: this also exempts a subtest's t.test() (same name, same package), which the
          // runner does not wait for: await it yourself (the tree has none today).
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    // CommonJS config files (.dependency-cruiser.cjs)
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
  },
  {
    files: ['src/core/**/*.ts', 'src/compile/**/*.ts', 'src/reconcile/**/*.ts', 'src/render/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      // pure parts: no I/O, no clock (STYLE.md)
      'no-console': 'error',
      'no-restricted-imports': [
        'error',
        { patterns: ['node:fs*', 'node:child_process', 'node:net', 'node:http*', 'node:dgram'] },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'pure parts take time as an input' },
      ],
    },
  },
);
