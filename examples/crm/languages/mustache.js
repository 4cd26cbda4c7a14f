// The CRM's Mustache compiler (https://mustache.github.io/mustache.5.html),
// published with its catalog: tenants write `format-email` extensions as
// templates. It runs inside each tenant's sandbox. Supported: variables
// (HTML-escaped), {{{raw}}} and {{&raw}}, sections over lists, objects and
// flags, inverted sections, comments, dotted names and {{.}}; not partials
// or delimiter changes. Errors name the template's line.
'use strict';

function parse(src) {
  const root = { name: null, children: [], line: 0 };
  const stack = [root];
  const lineAt = (pos) => src.slice(0, pos).split('\n').length;
  let i = 0;
  while (i < src.length) {
    const top = stack[stack.length - 1];
    const open = src.indexOf('{{', i);
    if (open < 0) { top.children.push({ t: 'text', v: src.slice(i) }); break; }
    if (open > i) top.children.push({ t: 'text', v: src.slice(i, open) });
    const line = lineAt(open);
    const triple = src[open + 2] === '{';
    const end = src.indexOf(triple ? '}}}' : '}}', open + 2);
    if (end < 0) throw new SyntaxError('line ' + line + ': a tag opened with {{ is never closed with }}');
    let tag = src.slice(open + (triple ? 3 : 2), end).trim();
    let kind = triple ? '&' : '';
    if (!triple && '#^/!&'.includes(tag[0])) { kind = tag[0]; tag = tag.slice(1).trim(); }
    i = end + (triple ? 3 : 2);
    if (kind === '!') continue;
    if (tag === '') throw new SyntaxError('line ' + line + ': an empty tag');
    if (kind === '#' || kind === '^') {
      const section = { t: kind, name: tag, children: [], line };
      top.children.push(section);
      stack.push(section);
    } else if (kind === '/') {
      if (stack.length === 1) throw new SyntaxError('line ' + line + ': {{/' + tag + '}} closes a section that was never opened');
      if (top.name !== tag) {
        throw new SyntaxError('line ' + line + ': {{/' + tag + '}} closes section `' + top.name + '`, opened on line ' + top.line);
      }
      stack.pop();
    } else {
      top.children.push({ t: kind === '&' ? 'raw' : 'var', name: tag });
    }
  }
  if (stack.length > 1) {
    const s = stack[stack.length - 1];
    throw new SyntaxError('line ' + s.line + ': section `' + s.name + '` is never closed (add {{/' + s.name + '}})');
  }
  return root.children;
}

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '/': '&#x2F;', '`': '&#x60;', '=': '&#x3D;' };

function lookup(stack, name) {
  if (name === '.') return stack[stack.length - 1];
  const parts = name.split('.');
  for (let i = stack.length - 1; i >= 0; i--) {
    const scope = stack[i];
    if (scope !== null && typeof scope === 'object' && parts[0] in scope) {
      let v = scope;
      for (const p of parts) v = v === null || v === undefined ? undefined : v[p];
      return v;
    }
  }
  return undefined;
}

function render(nodes, stack, out) {
  for (const n of nodes) {
    if (n.t === 'text') {
      out.push(n.v);
    } else if (n.t === 'var' || n.t === 'raw') {
      const v = lookup(stack, n.name);
      if (v === null || v === undefined) continue;
      const s = String(v);
      out.push(n.t === 'raw' ? s : s.replace(/[&<>"'`=/]/g, (c) => ESCAPES[c]));
    } else {
      const v = lookup(stack, n.name);
      const empty = v === null || v === undefined || v === false || v === '' || (Array.isArray(v) && v.length === 0);
      if (n.t === '^') {
        if (empty) render(n.children, stack, out);
      } else if (!empty) {
        const items = Array.isArray(v) ? v : [v];
        for (const item of items) {
          const scoped = item !== null && typeof item === 'object' || Array.isArray(v);
          if (scoped) stack.push(item);
          render(n.children, stack, out);
          if (scoped) stack.pop();
        }
      }
    }
  }
}

// Webtask's `wt-compiler` contract: ({ script, meta }, cb) -> cb(error, handler).
module.exports = function (options, cb) {
  let template;
  try {
    template = parse(String(options.script));
  } catch (e) {
    return cb(e);
  }
  cb(null, function (ctx, done) {
    const out = [];
    render(template, [ctx.body], out);
    done(null, out.join(''));
  });
};
