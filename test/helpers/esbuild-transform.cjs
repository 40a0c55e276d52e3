/**
 * Jest transform for the TypeScript sources: esbuild (already installed as tsx's, the runner of the
 * service's own processes) strips the types of one file at a time, as ts-jest did with
 * tsconfig.json's `isolatedModules` (type checking is `npm run typecheck`'s job).
 * See jest.config.js and docs/testing.md "CI time".
 */
'use strict';
/* global require, module, __filename */
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS module, loaded by jest's require() */
const { createHash } = require('node:crypto');
const { readFileSync } = require('node:fs');
const esbuild = require('esbuild');

// The settings of tsconfig.json that change emitted code (its `target` is ES2022, whose class fields
// are [[Define]] semantics; verbatimModuleSyntax keeps every import that is not `import type`).
const tsconfigRaw = { compilerOptions: { verbatimModuleSyntax: true, useDefineForClassFields: true } };

const SELF = createHash('sha1').update(readFileSync(__filename)).update(esbuild.version).digest('hex');

function options(filename, transformOptions) {
  return {
    loader: 'ts',
    format: transformOptions.supportsStaticESM ? 'esm' : 'cjs',
    target: 'node20',
    sourcemap: 'external',
    sourcefile: filename,
    tsconfigRaw,
  };
}

module.exports = {
  getCacheKey(sourceText, sourcePath, transformOptions) {
    return createHash('sha1')
      .update(SELF)
      .update('\0')
      .update(transformOptions.configString)
      .update('\0')
      .update(transformOptions.supportsStaticESM ? 'esm' : 'cjs')
      .update('\0')
      .update(sourcePath)
      .update('\0')
      .update(sourceText)
      .digest('hex');
  },
  process(sourceText, sourcePath, transformOptions) {
    const r = esbuild.transformSync(sourceText, options(sourcePath, transformOptions));
    return { code: r.code, map: r.map };
  },
  async processAsync(sourceText, sourcePath, transformOptions) {
    const r = await esbuild.transform(sourceText, options(sourcePath, transformOptions));
    return { code: r.code, map: r.map };
  },
};
