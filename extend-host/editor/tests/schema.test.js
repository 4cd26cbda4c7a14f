// The editor's response-schema check, on its own (node --test; run by
// extend-host/tests/editor_schema.rs). The module is the one the editor loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validate } from '../app/js/schema.js';

const at = (errors) => errors.map((e) => e.pointer + ' ' + e.message);

test('types, with integers accepted as numbers and not the other way', () => {
  assert.deepEqual(validate({ type: 'number' }, 3), []);
  assert.deepEqual(at(validate({ type: 'integer' }, 3.5)), [' must be integer, not number']);
  assert.deepEqual(at(validate({ type: ['string', 'null'] }, 1)), [' must be string or null, not integer']);
  assert.deepEqual(at(validate({ type: 'object' }, [])), [' must be object, not array']);
});

test('required fields, unknown fields and nested pointers', () => {
  const schema = {
    type: 'object',
    required: ['score', 'a/b'],
    properties: { score: { type: 'integer', minimum: 0, maximum: 100 }, 'a/b': {} },
    additionalProperties: false,
  };
  assert.deepEqual(validate(schema, { score: 50, 'a/b': 1 }), []);
  assert.deepEqual(at(validate(schema, { score: 101, extra: true })), [
    '/a~1b is required but missing',
    '/score must be at most 100',
    '/extra is not a field of this type',
  ]);
});

test('$ref into $defs, enum and const', () => {
  const schema = {
    $defs: { Tier: { enum: ['gold', 'silver'] } },
    type: 'object',
    properties: { tier: { $ref: '#/$defs/Tier' }, v: { const: 2 } },
  };
  assert.deepEqual(validate(schema, { tier: 'gold', v: 2 }), []);
  assert.deepEqual(at(validate(schema, { tier: 'bronze', v: 3 })), [
    '/tier must be one of "gold", "silver"',
    '/v must be 2',
  ]);
  assert.deepEqual(at(validate({ $ref: '#/$defs/Nope' }, 1)), [
    ' the schema refers to #/$defs/Nope, which it does not define',
  ]);
});

test('anyOf reports the closest alternative, oneOf refuses two matches', () => {
  const any = { anyOf: [{ type: 'object', required: ['a', 'b', 'c'] }, { type: 'object', required: ['x'] }] };
  assert.deepEqual(validate(any, { x: 1 }), []);
  assert.deepEqual(at(validate(any, {})), ['/x is required but missing']);
  const one = { oneOf: [{ type: 'number' }, { type: 'integer' }] };
  assert.deepEqual(at(validate(one, 1)), [' matches 2 alternatives; exactly one must match']);
});

test('arrays, prefixItems and string lengths counted in characters', () => {
  const schema = { type: 'array', prefixItems: [{ type: 'string' }], items: { type: 'integer' }, maxItems: 3 };
  assert.deepEqual(validate(schema, ['a', 1, 2]), []);
  assert.deepEqual(at(validate(schema, [1, 'b', 2, 3])), [
    '/0 must be string, not integer',
    '/1 must be integer, not string',
    ' must have at most 3 items',
  ]);
  assert.deepEqual(validate({ maxLength: 2 }, '😀😀'), []);
  assert.deepEqual(at(validate({ pattern: '^a' }, 'b')), [' must match ^a']);
});

test('a schema that refers to itself ends instead of recursing forever', () => {
  const schema = { $defs: { Loop: { $ref: '#/$defs/Loop' } }, $ref: '#/$defs/Loop' };
  assert.deepEqual(validate(schema, 1), []);
  assert.deepEqual(at(validate(false, 1)), [' no value is allowed here']);
});
