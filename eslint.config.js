// Lint: the recommended sets of ESLint and typescript-eslint, plus the rules that keep
// the house style (STYLE.md): no floating promises in the agent loop, no console in pure parts.
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
