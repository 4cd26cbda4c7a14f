/*
 * The editor's state and start-up: `new Editor(element, config).start()`.
 */
import { loadMonaco, loadStyles } from './monaco.js';
import { ApiError, Api } from './api.js';

function normalize(config) {
  config = config || {};
  var runner = config.runner || {};
  return {
    token: config.token || '',
    container: config.webtaskContainer || '',
    name: config.webtaskName || '',
    hostUrl: (config.hostUrl || new URL(import.meta.url).origin).replace(/\/+$/, ''),
    theme: config.theme === 'dark' ? 'dark' : 'light',
    createIfNotExists: config.createIfNotExists !== false,
    extensionType: config.extensionType || '',
    allowEditingSecrets: config.allowEditingSecrets !== false,
    allowEditingMeta: config.allowEditingMeta !== false,
    allowDeleting: config.allowDeleting !== false,
    sample: runner.sample,
    onNavigate: typeof config.onNavigate === 'function' ? config.onNavigate : function () {}
  };
}

function Editor(element, config) {
  this.el = element;
  this.config = config;
  this.api = new Api(config.hostUrl, config.token, config.container);
  this.catalog = null; // {points: [...]} or null before the first publish
  this.types = '';
  this.list = [];
  this.current = null; // the open extension, see `open`
  this.logAbort = null;
  this.problems = null; // null: not checked yet
  this.deployArmed = false;
}

Editor.prototype.start = function () {
  var self = this;
  var c = this.config;
  loadStyles(c.hostUrl);
  this.renderShell();
  if (!c.token || !c.container) {
    this.fatal('The editor needs a token and a webtask container (`token`, `webtaskContainer`).');
    return Promise.resolve(this);
  }
  this.status('Loading…');
  return Promise.all([
    loadMonaco(c.hostUrl),
    this.api.extensions(),
    this.api.maybe('GET', '/api/catalog', null),
    this.api.maybe('GET', '/api/catalog/types.d.ts', '')
  ]).then(function (r) {
    self.monaco = r[0];
    self.list = r[1] || [];
    self.catalog = r[2] ? r[2].catalog : null;
    self.types = typeof r[3] === 'string' ? r[3] : '';
    self.setUpMonaco();
    self.renderList();
    self.streamLogs();
    var wanted = c.name || (self.list[0] && self.list[0].name);
    if (wanted && self.list.some(function (w) { return w.name === wanted; })) return self.open(wanted);
    if (c.name && c.createIfNotExists) return self.openNew(c.extensionType || self.onlyPoint(), c.name);
    if (c.name) throw new ApiError(404, 'container `' + c.container + '` has no extension `' + c.name + '`');
    self.status(self.list.length ? '' : 'No extensions yet: create one from a point\u2019s template.');
    if (!self.list.length) self.showNewForm();
  }).catch(function (e) {
    if (e.status === 401 || e.status === 403) {
      self.fatal('This token cannot open container `' + c.container + '`: ' + e.message);
    } else {
      self.fatal(e.message || String(e));
    }
  }).then(function () { return self; });
};

Editor.prototype.points = function () { return (this.catalog && this.catalog.points) || []; };

/**
 * The platform language an extension with `meta` is written in (its
 * `wt-compiler`, else its point's `language`), as
 * `{name, mode}` with the editor's syntax mode; null for JavaScript.
 */
Editor.prototype.languageOf = function (meta) {
  var point = meta && this.point(meta['auth0-extension-type']);
  var name = (meta && meta['wt-compiler']) || (point && point.language) || null;
  if (!name || name === 'javascript') return null;
  var l = (this.catalog && this.catalog.languages && this.catalog.languages[name]) || {};
  return { name: name, mode: l.editor_mode || 'plaintext' };
};

Editor.prototype.point = function (name) {
  return this.points().filter(function (p) { return p.name === name; })[0] || null;
};

Editor.prototype.onlyPoint = function () {
  var ps = this.points();
  return ps.length === 1 ? ps[0].name : '';
};

Editor.prototype.setUpMonaco = function () {
  var m = this.monaco;
  var ts = m.languages.typescript;
  var options = {
    target: ts.ScriptTarget.ES2020,
    allowJs: true,
    checkJs: true,
    allowNonTsExtensions: true,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.NodeJs,
    noEmit: true
  };
  // With the point's types, the sandbox's globals come from them
  // (extend-types.d.ts declares exactly what the host gives), not from the
  // DOM: a browser API the host lacks is an error here as it is at run time.
  if (this.types) options.lib = ['es2020'];
  ts.javascriptDefaults.setCompilerOptions(options);
  ts.javascriptDefaults.setDiagnosticsOptions({ noSemanticValidation: false, noSyntaxValidation: false });
  ts.javascriptDefaults.setEagerModelSync(true);
  // The point's types, where templates import them from ('./extend-types').
  if (this.types) ts.javascriptDefaults.addExtraLib(this.types, 'file:///extend-types.d.ts');
  m.editor.setTheme(this.config.theme === 'dark' ? 'vs-dark' : 'vs');
  this.code = m.editor.create(this.parts.code, {
    value: '',
    language: 'javascript',
    automaticLayout: true,
    minimap: { enabled: false },
    fixedOverflowWidgets: true,
    scrollBeyondLastLine: false,
    fontSize: 13
  });
  var self = this;
  this.code.onDidChangeModelContent(function () {
    if (self.current && !self.loading) {
      self.current.dirty = true;
      self.deployArmed = false;
      self.renderState();
      self.keepLocal();
    }
    self.scheduleCheck();
  });
  // Unsaved work is not lost without a word: the browser asks before the
  // page goes, and a copy of the code stays in this browser meanwhile.
  window.addEventListener('beforeunload', function (e) {
    if (self.current && self.current.dirty) {
      e.preventDefault();
      e.returnValue = '';
    }
  });
  var save = function () { self.saveDraft().catch(self.fail.bind(self)); };
  var run = function () { if (self.parts.runner) { var b = self.parts.runner.querySelector('[data-test=run]'); if (b) b.click(); } };
  this.code.addCommand(m.KeyMod.CtrlCmd | m.KeyCode.KeyS, save);
  this.code.addCommand(m.KeyMod.CtrlCmd | m.KeyCode.Enter, run);
  this.parts.root.addEventListener('keydown', function (e) {
    if (!(e.ctrlKey || e.metaKey)) return;
    if (e.key === 's' || e.key === 'S') { e.preventDefault(); save(); }
    else if (e.key === 'Enter') { e.preventDefault(); run(); }
  });
  window.__extendEditor = this; // for tests and for the platform's console
};

export { Editor, normalize };
