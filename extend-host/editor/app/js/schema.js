/*
 * The JSON Schema subset the runner checks responses with (and
 * `ExtendEditor.validate`): tested on its own by editor/tests/schema.test.mjs.
 */
import { deepEqual } from './util.js';

/**
 * Checks `value` against a JSON Schema (the draft 2020-12 subset that
 * schemars writes: $ref into $defs, type, enum, const, properties,
 * required, additionalProperties, items, prefixItems, anyOf, oneOf,
 * allOf, bounds). Returns `[{pointer, message}]`, empty when it matches.
 */
function validate(schema, value) {
  var errors = [];
  check(schema, value, '', schema, errors, 0);
  return errors;
}

function kind(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function isType(t, v) {
  var k = kind(v);
  return t === k || (t === 'number' && k === 'integer');
}

function escapePointer(key) { return String(key).replace(/~/g, '~0').replace(/\//g, '~1'); }

function check(s, v, ptr, root, errors, depth) {
  if (s === true || s === undefined || s === null || depth > 64) return;
  var fail = function (message, at) { errors.push({ pointer: at === undefined ? ptr : at, message: message }); };
  if (s === false) return fail('no value is allowed here');
  if (typeof s.$ref === 'string') {
    var target = s.$ref.charAt(0) === '#' ? resolvePointer(root, s.$ref.slice(1)) : undefined;
    if (target === undefined) return fail('the schema refers to ' + s.$ref + ', which it does not define');
    check(target, v, ptr, root, errors, depth + 1);
  }
  if ('const' in s && !deepEqual(s.const, v)) fail('must be ' + JSON.stringify(s.const));
  if (Array.isArray(s.enum) && !s.enum.some(function (e) { return deepEqual(e, v); })) {
    fail('must be one of ' + s.enum.map(function (e) { return JSON.stringify(e); }).join(', '));
  }
  if (s.type !== undefined) {
    var types = [].concat(s.type);
    if (!types.some(function (t) { return isType(t, v); })) {
      return fail('must be ' + types.join(' or ') + ', not ' + kind(v));
    }
  }
  (s.allOf || []).forEach(function (sub) { check(sub, v, ptr, root, errors, depth + 1); });
  ['anyOf', 'oneOf'].forEach(function (key) {
    if (!Array.isArray(s[key])) return;
    var results = s[key].map(function (sub) { var e = []; check(sub, v, ptr, root, e, depth + 1); return e; });
    var matching = results.filter(function (e) { return e.length === 0; }).length;
    if (matching === 0) {
      // The closest alternative says most about what is wrong.
      var best = results.reduce(function (a, b) { return b.length < a.length ? b : a; });
      best.forEach(function (e) { errors.push(e); });
      if (best.length === 0) fail('matches none of the alternatives');
    } else if (key === 'oneOf' && matching > 1) {
      fail('matches ' + matching + ' alternatives; exactly one must match');
    }
  });
  if (typeof v === 'number') {
    if (typeof s.minimum === 'number' && v < s.minimum) fail('must be at least ' + s.minimum);
    if (typeof s.maximum === 'number' && v > s.maximum) fail('must be at most ' + s.maximum);
    if (typeof s.exclusiveMinimum === 'number' && v <= s.exclusiveMinimum) fail('must be more than ' + s.exclusiveMinimum);
    if (typeof s.exclusiveMaximum === 'number' && v >= s.exclusiveMaximum) fail('must be less than ' + s.exclusiveMaximum);
  }
  if (typeof v === 'string') {
    var length = Array.from(v).length;
    if (typeof s.minLength === 'number' && length < s.minLength) fail('must have at least ' + s.minLength + ' characters');
    if (typeof s.maxLength === 'number' && length > s.maxLength) fail('must have at most ' + s.maxLength + ' characters');
    if (typeof s.pattern === 'string') {
      try { if (!new RegExp(s.pattern, 'u').test(v)) fail('must match ' + s.pattern); } catch (e) { /* a pattern JS cannot read is not the value's fault */ }
    }
  }
  if (Array.isArray(v)) {
    var prefix = Array.isArray(s.prefixItems) ? s.prefixItems : [];
    v.forEach(function (item, i) {
      var sub = i < prefix.length ? prefix[i] : s.items;
      if (sub !== undefined) check(sub, item, ptr + '/' + i, root, errors, depth + 1);
    });
    if (typeof s.minItems === 'number' && v.length < s.minItems) fail('must have at least ' + s.minItems + ' items');
    if (typeof s.maxItems === 'number' && v.length > s.maxItems) fail('must have at most ' + s.maxItems + ' items');
  }
  if (kind(v) === 'object') {
    var props = s.properties || {};
    (s.required || []).forEach(function (key) {
      if (!(key in v)) fail('is required but missing', ptr + '/' + escapePointer(key));
    });
    Object.keys(v).forEach(function (key) {
      var at = ptr + '/' + escapePointer(key);
      if (key in props) check(props[key], v[key], at, root, errors, depth + 1);
      else if (s.additionalProperties === false) fail('is not a field of this type', at);
      else if (s.additionalProperties && typeof s.additionalProperties === 'object') check(s.additionalProperties, v[key], at, root, errors, depth + 1);
    });
  }
}

function resolvePointer(root, pointer) {
  if (pointer === '') return root;
  return pointer.split('/').slice(1).reduce(function (node, part) {
    if (node === undefined || node === null) return undefined;
    return node[decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~')];
  }, root);
}

export { validate, kind, isType, escapePointer, check, resolvePointer };
