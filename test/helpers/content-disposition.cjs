/**
 * Jest-only stand-in for `content-disposition` (mapped in jest.config.js). @fastify/static 10 (pulled
 * in by the queue dashboard, @bull-board/fastify) requires content-disposition 3, which is ESM only;
 * Node 20 loads that natively (require(esm)), jest's module runtime on Node 20 cannot. Without this
 * the tests could not build the app the way `npm start` does (dashboard included). Both majors have
 * the same function: v1 exports it as the module (`contentDisposition(name, opts)`, `.parse`), v3 as
 * `create` / `parse`; this module answers to both shapes and delegates to the v1 copy that
 * @fastify/swagger-ui's @fastify/static 9 already depends on.
 */
'use strict';
/* global require, module, __dirname */
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS module, loaded by jest's require() */
const path = require('node:path');

const v1 = require(path.join(__dirname, '../../node_modules/@fastify/swagger-ui/node_modules/content-disposition/index.js'));

function create(filename, options) {
  return v1(filename, options);
}
create.create = create;
create.parse = v1.parse;
module.exports = create;
