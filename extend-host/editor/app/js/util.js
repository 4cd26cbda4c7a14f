/*
 * Small DOM and value helpers every part of the editor uses.
 */

/** `h('div', {class: 'x', onclick: f}, child, 'text')`: a DOM element. */
function h(tag, attrs) {
  var el = document.createElement(tag);
  Object.keys(attrs || {}).forEach(function (k) {
    var v = attrs[k];
    if (v === undefined || v === null || v === false) return;
    if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : v);
  });
  for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
  return el;
}

function append(el, child) {
  if (child === undefined || child === null || child === false) return;
  if (Array.isArray(child)) return child.forEach(function (c) { append(el, c); });
  el.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
}

function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

function pretty(v) { return typeof v === 'string' ? v : JSON.stringify(v, null, 2); }

function randomHex(bytes) {
  var a = new Uint8Array(bytes);
  crypto.getRandomValues(a);
  return Array.prototype.map.call(a, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
}

function time(t) {
  if (!t) return '';
  // The host answers Unix seconds.
  var d = new Date(typeof t === 'number' ? (t < 1e12 ? t * 1000 : t) : String(t));
  return isNaN(d) ? String(t) : d.toLocaleString();
}

function deepEqual(a, b) { return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b)); }

function canonical(v) {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    var o = {};
    Object.keys(v).sort().forEach(function (k) { o[k] = canonical(v[k]); });
    return o;
  }
  return v;
}

function parseJson(text) {
  try { return { value: JSON.parse(text) }; } catch (e) { return { error: e.message }; }
}

export { h, append, clear, pretty, randomHex, time, deepEqual, canonical, parseJson };
