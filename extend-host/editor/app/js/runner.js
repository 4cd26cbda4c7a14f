/*
 * The runner: a test payload, the point's timeout, elapsed time and cancel,
 * and the response checked against the point's schema.
 */
import { Editor } from './core.js';
import { h, clear, pretty, parseJson } from './util.js';
import { validate, check } from './schema.js';
import { EXTENSION_TYPE } from './api.js';

Editor.prototype.sampleFor = function (point) {
  var s = this.config.sample;
  if (typeof s === 'function') return s(point);
  if (s !== undefined) return s;
  return point && point.sample !== undefined ? point.sample : {};
};

Editor.prototype.renderRunner = function () {
  var self = this;
  var c = this.current;
  var p = clear(this.parts.runner);
  if (!c) return;
  var point = this.point(c.meta[EXTENSION_TYPE]);
  var method = h('select', { 'data-test': 'run-method', 'aria-label': 'Method' }, ['POST', 'GET', 'PUT', 'PATCH', 'DELETE'].map(function (m) {
    return h('option', { value: m }, m);
  }));
  var headers = h('textarea', { class: 'xe-text', rows: 2, 'data-test': 'run-headers', spellcheck: 'false' }, '{}');
  var body = h('textarea', { class: 'xe-text', rows: 5, 'data-test': 'run-body', spellcheck: 'false' }, pretty(this.sampleFor(point)));
  var result = h('div', { class: 'xe-result', 'data-test': 'run-result' });
  p.appendChild(h('div', { class: 'xe-runner-head' }, 'Runner ', method,
    h('button', { class: 'xe-button xe-primary', 'data-test': 'run', onclick: function () {
      self.run(method.value, headers.value, body.value, result, point);
    } }, 'Run')));
  p.appendChild(h('label', {}, 'Headers (JSON)', headers));
  p.appendChild(h('label', {}, 'Body (JSON)' + (point ? ', a sample ' + point.name + ' payload' : ''), body));
  p.appendChild(result);
};

/** Saves the draft, then runs it with the runner's request. */
Editor.prototype.run = function (method, headersText, bodyText, out, point) {
  var self = this;
  var c = this.current;
  var headers = parseJson(headersText || '{}');
  if (headers.error || !headers.value || typeof headers.value !== 'object') {
    return this.status('the headers must be a JSON object of strings: ' + (headers.error || ''), true);
  }
  var withBody = method !== 'GET' && method !== 'DELETE';
  if (withBody && bodyText.trim()) {
    var parsed = parseJson(bodyText);
    if (parsed.error) return this.status('the body is not valid JSON: ' + parsed.error, true);
  }
  var init = { method: method, headers: Object.assign({ 'Content-Type': 'application/json' }, headers.value) };
  init.headers.Authorization = 'Bearer ' + this.config.token;
  // The run gets the point's timeout, as the platform's call would (the
  // host's own limit is longer).
  var limit = point && point.timeout_ms;
  if (limit && !Object.keys(init.headers).some(function (k) { return k.toLowerCase() === 'x-extend-deadline-ms'; })) {
    init.headers['x-extend-deadline-ms'] = String(limit);
  }
  if (withBody) init.body = bodyText;
  if (this.running) this.running.abort();
  var controller = window.AbortController ? new window.AbortController() : null;
  if (controller) init.signal = controller.signal;
  this.running = controller;
  var started = Date.now();
  var seconds = function () { return ((Date.now() - started) / 1000).toFixed(1) + ' s'; };
  var elapsed = h('span', { 'data-test': 'run-elapsed' }, '0.0 s');
  clear(out).appendChild(h('div', { 'aria-live': 'polite' }, 'Running… ', elapsed,
    limit ? ' of the point\u2019s ' + (limit / 1000) + ' s' : '', ' ',
    controller ? h('button', { class: 'xe-link', type: 'button', 'data-test': 'run-cancel', onclick: function () { controller.abort(); } }, 'Cancel') : null));
  var ticking = setInterval(function () { elapsed.textContent = seconds(); }, 100);
  var done = function () {
    clearInterval(ticking);
    if (self.running === controller) self.running = null;
  };
  return this.saveDraft().then(function () {
    return fetch(self.config.hostUrl + self.api.path(c.name, '/draft/run'), init);
  }).then(function (res) {
    return res.text().then(function (text) {
      var took = seconds();
      done();
      var shown = [];
      res.headers.forEach(function (v, k) { shown.push(k + ': ' + v); });
      var parsed = parseJson(text);
      clear(out).appendChild(h('div', {},
        h('div', { class: 'xe-run-line' },
          h('span', { class: 'xe-badge ' + (res.ok ? 'xe-good' : 'xe-bad'), 'data-test': 'run-status' }, String(res.status)),
          ' from ', h('span', { 'data-test': 'run-source' }, res.headers.get('x-wt-response-source') || 'unknown'),
          ' in ', h('span', { 'data-test': 'run-took' }, took)),
        h('details', {}, h('summary', {}, 'Headers'), h('pre', { class: 'xe-pre', 'data-test': 'run-response-headers' }, shown.sort().join('\n'))),
        subrequestList(res.headers.get('x-extend-subrequests')),
        h('pre', { class: 'xe-pre', 'data-test': 'run-response' }, parsed.error ? text : pretty(parsed.value)),
        self.schemaReport(point, res.ok && !parsed.error ? parsed.value : undefined, res.ok)));
    });
  }).catch(function (e) {
    var took = seconds();
    done();
    clear(out);
    if (e && e.name === 'AbortError') {
      out.appendChild(h('div', { 'data-test': 'run-cancelled' }, 'Cancelled after ' + took + '.'));
      return;
    }
    self.fail(e);
  });
};

/** Whether an answer matches the point's response schema, with a JSON Pointer per mismatch. */
Editor.prototype.schemaReport = function (point, value, ok) {
  if (!point || !point.response_schema) {
    return h('div', { class: 'xe-hint', 'data-test': 'run-schema' }, point ? 'This point reads no answer.' : 'Not an extension of a published point.');
  }
  if (!ok) return h('div', { class: 'xe-hint', 'data-test': 'run-schema' }, 'The run failed: nothing to check.');
  var errors = value === undefined ? [{ pointer: '', message: 'is not JSON' }] : validate(point.response_schema, value);
  if (!errors.length) {
    return h('div', { class: 'xe-good-text', 'data-test': 'run-schema' }, 'Matches the response schema of ' + point.name + '.');
  }
  return h('div', { class: 'xe-bad-text', 'data-test': 'run-schema' }, 'Does not match the response schema of ' + point.name + ':',
    h('ul', {}, errors.map(function (e) {
      return h('li', { 'data-test': 'schema-error' }, h('code', {}, e.pointer || '/'), ' ' + e.message);
    })));
};

/** The requests a run made (`x-extend-subrequests`): method, URL, status or error, ms. */
function subrequestList(header) {
  var list;
  try { list = header ? JSON.parse(header) : []; } catch (e) { list = []; }
  if (!list.length) return null;
  return h('details', { open: true }, h('summary', {}, 'Requests (' + list.length + ')'),
    h('table', { class: 'xe-table', 'data-test': 'run-subrequests' },
      h('tr', {}, h('th', {}, 'method'), h('th', {}, 'URL'), h('th', {}, 'status'), h('th', {}, 'ms')),
      list.map(function (s) {
        if (s.more) return h('tr', {}, h('td', { colspan: '4' }, s.more + ' more'));
        return h('tr', {}, h('td', {}, s.method), h('td', {}, s.url),
          h('td', { class: s.status !== undefined && s.status < 400 ? 'xe-good-text' : 'xe-bad-text' }, s.status !== undefined ? String(s.status) : s.error),
          h('td', {}, String(s.ms)));
      })));
}
