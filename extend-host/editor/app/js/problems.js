/*
 * Type problems from the TypeScript worker, which hold deploy back.
 */
import { Editor } from './core.js';
import { h, clear } from './util.js';

Editor.prototype.scheduleCheck = function () {
  var self = this;
  clearTimeout(this.checkTimer);
  if (this.current && this.languageOf(this.current.meta)) {
    // Not JavaScript: nothing for TypeScript to check (Run compiles it).
    this.problems = [];
    this.renderProblems();
    return;
  }
  this.problems = null;
  this.renderProblems();
  this.checkTimer = setTimeout(function () { self.checkTypes(); }, 250);
};

/**
 * Asks the TypeScript worker for the code's errors (syntax and types,
 * against the point's .d.ts). Resolves to `[{line, column, message}]`
 * for the code as it is now; the problems panel shows the latest.
 */
Editor.prototype.checkTypes = function () {
  var self = this;
  var model = this.code && this.code.getModel();
  if (!model) return Promise.resolve([]);
  if (this.current && this.languageOf(this.current.meta)) {
    // Not JavaScript: nothing for TypeScript to check (Run compiles it).
    this.problems = [];
    this.renderProblems();
    return Promise.resolve([]);
  }
  var version = model.getVersionId();
  var uri = model.uri;
  var flatten = function (m) {
    var out = [];
    for (var node = m; node; node = node.next && node.next[0]) {
      out.push(typeof node === 'string' ? node : node.messageText);
      if (typeof node === 'string') break;
    }
    return out.join(' ');
  };
  return this.monaco.languages.typescript.getJavaScriptWorker().then(function (getWorker) {
    return getWorker(uri);
  }).then(function (worker) {
    var file = uri.toString();
    return Promise.all([worker.getSyntacticDiagnostics(file), worker.getSemanticDiagnostics(file)]);
  }).then(function (r) {
    if (model.isDisposed() || model.getVersionId() !== version) return self.checkTypes();
    var problems = r[0].concat(r[1]).filter(function (d) { return d.category === 1; }).map(function (d) {
      var at = model.getPositionAt(d.start || 0);
      return { line: at.lineNumber, column: at.column, message: flatten(d.messageText) };
    });
    if (self.code.getModel() === model) {
      self.problems = problems;
      self.renderProblems();
    }
    return problems;
  });
};

Editor.prototype.renderProblems = function () {
  var list = this.problems;
  var p = clear(this.parts.problems);
  p.classList.toggle('xe-has-problems', !!(list && list.length));
  p.setAttribute('data-checked', list ? 'true' : 'false');
  if (!list) {
    p.appendChild(h('span', { class: 'xe-hint' }, 'Checking types…'));
    return;
  }
  var language = this.current && this.languageOf(this.current.meta);
  if (language) {
    p.appendChild(h('span', { class: 'xe-hint' }, 'Written in ' + language.name + ': no type check here; Run compiles it on the host, with its errors.'));
    return;
  }
  if (!list.length) {
    p.appendChild(h('span', { class: 'xe-ok' }, this.types ? 'No type errors.' : 'No type errors (the platform published no types).'));
    return;
  }
  var code = this.code;
  p.appendChild(h('div', {}, list.length + (list.length === 1 ? ' type error:' : ' type errors:')));
  list.forEach(function (m) {
    p.appendChild(h('div', {
      class: 'xe-problem', 'data-test': 'problem',
      onclick: function () { code.setPosition({ lineNumber: m.line, column: m.column }); code.focus(); }
    }, 'line ' + m.line + ': ' + m.message));
  });
};
