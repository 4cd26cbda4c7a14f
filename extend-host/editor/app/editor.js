/*
 * The Extension Editor of extend-host: `ExtendEditor.show(element, config)`.
 *
 * A platform loads this script from its host (`<script src="{host}/editor.js">`)
 * and shows the editor in one of its own elements with a tenant token. The
 * editor calls the host's management API with that token and nothing else,
 * so it can do exactly what the token can: one container, its webtasks.
 *
 * Plain ES2017 in one file, no build step: the only third-party code is the
 * vendored Monaco editor (editor/vendor/monaco, rebuilt by editor/vendor.sh).
 */
(function (global) {
  'use strict';

  var RUN_SECRET = 'auth0-extension-secret';
  var EXTENSION_TYPE = 'auth0-extension-type';
  var script = document.currentScript && document.currentScript.src;
  var DEFAULT_HOST = script ? new URL(script, location.href).origin : location.origin;

  // ---------------------------------------------------------------- Monaco

  var monacoPromise = null;

  /** Loads the vendored Monaco once per page, from `hostUrl`. */
  function loadMonaco(hostUrl) {
    if (monacoPromise) return monacoPromise;
    // Versioned: cached for good by the browser (MONACO_VERSION in api/editor.rs).
    var base = hostUrl + '/editor/monaco-0.52.2/';
    var vs = base + 'vs';
    monacoPromise = new Promise(function (resolve, reject) {
      if (global.monaco && global.monaco.editor) return resolve(global.monaco);
      var sameOrigin = new URL(hostUrl).origin === location.origin;
      global.MonacoEnvironment = {
        getWorkerUrl: function () {
          if (sameOrigin) return vs + '/base/worker/workerMain.js';
          // A worker must come from the page's origin: this one imports the host's.
          var src = 'self.MonacoEnvironment = { baseUrl: ' + JSON.stringify(base) +
            ' }; importScripts(' + JSON.stringify(vs + '/base/worker/workerMain.js') + ');';
          return 'data:text/javascript;charset=utf-8,' + encodeURIComponent(src);
        }
      };
      var loader = document.createElement('script');
      loader.src = vs + '/loader.js';
      loader.onerror = function () { reject(new Error('could not load the editor from ' + vs)); };
      loader.onload = function () {
        global.require.config({ paths: { vs: vs } });
        global.require(['vs/editor/editor.main'], function () { resolve(global.monaco); }, reject);
      };
      document.head.appendChild(loader);
    });
    return monacoPromise;
  }

  function loadStyles(hostUrl) {
    var href = hostUrl + '/editor/editor.css';
    if (document.querySelector('link[href="' + href + '"]')) return;
    var link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = href;
    document.head.appendChild(link);
  }

  // --------------------------------------------------------------- helpers

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

  // ------------------------------------------------- JSON Schema (checking)

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

  // ------------------------------------------------------------------- API

  function ApiError(status, message) {
    this.status = status;
    this.message = message;
  }
  ApiError.prototype = Object.create(Error.prototype);

  function Api(hostUrl, token, container) {
    this.hostUrl = hostUrl;
    this.token = token;
    this.container = container;
  }

  /**
   * The host's rule for container and webtask names (`names.rs`): 1 to 64
   * of A-Z a-z 0-9 - _ . ~, not only dots. The message is the host's.
   */
  function nameProblem(what, name) {
    if (/^[A-Za-z0-9._~-]{1,64}$/.test(name) && !/^\.+$/.test(name)) return null;
    return 'invalid ' + what + ' name `' + name + '`: use 1 to 64 characters from A-Z, a-z, 0-9, `-`, `_`, `.` and `~` (not only dots)';
  }

  /**
   * The management path of the container (`name` null or undefined) or of
   * one extension. An empty or invalid name throws: `/api/webtask/c` +
   * `/draft` is the path of a webtask called `draft`.
   */
  Api.prototype.path = function (name, rest) {
    var base = '/api/webtask/' + encodeURIComponent(this.container);
    if (name === null || name === undefined) {
      if (rest) throw new ApiError(400, 'an extension needs a name');
      return base;
    }
    var problem = nameProblem('webtask', name);
    if (problem) throw new ApiError(400, problem);
    return base + '/' + encodeURIComponent(name) + (rest || '');
  };

  /** A management call; resolves to the parsed JSON (or null), rejects with ApiError. */
  Api.prototype.call = function (method, path, body) {
    var init = { method: method, headers: { Authorization: 'Bearer ' + this.token } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(this.hostUrl + path, init).then(function (res) {
      return res.text().then(function (text) {
        var parsed = text ? parseJson(text) : { value: null };
        if (!res.ok) {
          var message = parsed.value && parsed.value.message ? parsed.value.message : text || res.statusText;
          throw new ApiError(res.status, message);
        }
        return parsed.error ? text : parsed.value;
      });
    }, function (e) {
      throw new ApiError(0, 'the host at ' + this.hostUrl + ' cannot be reached (' + e.message + ')');
    }.bind(this));
  };

  /** Like `call`, but a 404 resolves to `missing`. */
  Api.prototype.maybe = function (method, path, missing) {
    return this.call(method, path).catch(function (e) {
      if (e.status === 404) return missing;
      throw e;
    });
  };

  // --------------------------------------------------------------- editor

  function normalize(config) {
    config = config || {};
    var runner = config.runner || {};
    return {
      token: config.token || '',
      container: config.webtaskContainer || '',
      name: config.webtaskName || '',
      hostUrl: (config.hostUrl || DEFAULT_HOST).replace(/\/+$/, ''),
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
    ts.javascriptDefaults.setCompilerOptions({
      target: ts.ScriptTarget.ES2020,
      allowJs: true,
      checkJs: true,
      allowNonTsExtensions: true,
      module: ts.ModuleKind.CommonJS,
      moduleResolution: ts.ModuleResolutionKind.NodeJs,
      noEmit: true
    });
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
    global.addEventListener('beforeunload', function (e) {
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
    global.__extendEditor = this; // for tests and for the platform's console
  };

  // ---------------------------------------------------------------- layout

  Editor.prototype.renderShell = function () {
    var self = this;
    var p = this.parts = {};
    var tab = function (id, label) {
      return h('button', { class: 'xe-tab', role: 'tab', 'aria-selected': 'false', 'aria-controls': 'xe-pane-' + id, 'data-tab': id, onclick: function () { self.showTab(id); } }, label);
    };
    // Every button shows what went wrong: a handler that throws or rejects
    // used to leave only an uncaught error in the console.
    var button = function (id, label, handler, cls) {
      return (p[id] = h('button', { class: 'xe-button ' + (cls || ''), 'data-test': id, onclick: function () {
        try {
          var r = handler.call(self);
          if (r && typeof r.catch === 'function') r.catch(self.fail.bind(self));
        } catch (e) {
          self.fail(e);
        }
      } }, label));
    };
    clear(this.el);
    this.el.appendChild(
      (p.root = h('div', { class: 'xe xe-' + this.config.theme },
        h('header', { class: 'xe-bar' },
          h('span', { class: 'xe-title' }, 'Extensions'),
          h('span', { class: 'xe-container', 'data-test': 'container' }, this.config.container),
          (p.name = h('span', { class: 'xe-name', 'data-test': 'name' })),
          (p.state = h('span', { class: 'xe-state', 'data-test': 'state' })),
          h('span', { class: 'xe-spacer' }),
          button('save', 'Save draft', this.saveDraft),
          button('deploy', 'Deploy', this.deploy, 'xe-primary'),
          button('discard', 'Discard draft', this.discardDraft),
          button('rename', 'Rename', this.showRename),
          this.config.allowDeleting ? button('delete', 'Delete', this.remove, 'xe-danger') : null),
        (p.dialog = h('div', { class: 'xe-dialog', 'data-test': 'dialog', hidden: true })),
        (p.status = h('div', { class: 'xe-status', role: 'status', 'aria-live': 'polite', 'data-test': 'status' })),
        h('div', { class: 'xe-body' },
          h('aside', { class: 'xe-list' },
            h('button', { class: 'xe-button xe-new', 'data-test': 'new', onclick: function () { self.showNewForm(); } }, '+ New extension'),
            (p.list = h('div', { 'data-test': 'list' }))),
          h('main', { class: 'xe-main' },
            h('nav', { class: 'xe-tabs', role: 'tablist', 'aria-label': 'Extension' }, tab('code', 'Code'), tab('secrets', 'Secrets'), tab('meta', 'Metadata'),
              tab('versions', 'Versions'), tab('replay', 'Test draft')),
            h('div', { class: 'xe-pane', role: 'tabpanel', id: 'xe-pane-code', 'data-pane': 'code' },
              (p.code = h('div', { class: 'xe-code', 'data-test': 'code' })),
              (p.problems = h('div', { class: 'xe-problems', 'data-test': 'problems' }))),
            (p.secrets = h('div', { class: 'xe-pane xe-form', role: 'tabpanel', id: 'xe-pane-secrets', 'data-pane': 'secrets', 'data-test': 'secrets' })),
            (p.meta = h('div', { class: 'xe-pane xe-form', role: 'tabpanel', id: 'xe-pane-meta', 'data-pane': 'meta', 'data-test': 'meta' })),
            (p.versions = h('div', { class: 'xe-pane xe-form', role: 'tabpanel', id: 'xe-pane-versions', 'data-pane': 'versions', 'data-test': 'versions' })),
            (p.replay = h('div', { class: 'xe-pane xe-form', role: 'tabpanel', id: 'xe-pane-replay', 'data-pane': 'replay' }))),
          h('section', { class: 'xe-side' },
            (p.runner = h('div', { class: 'xe-runner', 'data-test': 'runner' })),
            h('div', { class: 'xe-logs-head' }, 'Logs',
              h('button', { class: 'xe-link', onclick: function () { clear(p.logs); } }, 'clear')),
            (p.logs = h('div', { class: 'xe-logs', 'data-test': 'logs' })))))));
    this.showTab('code');
    this.renderState();
  };

  Editor.prototype.showTab = function (id) {
    this.tab = id;
    Array.prototype.forEach.call(this.parts.root.querySelectorAll('[data-tab]'), function (t) {
      t.classList.toggle('xe-active', t.getAttribute('data-tab') === id);
      t.setAttribute('aria-selected', String(t.getAttribute('data-tab') === id));
    });
    Array.prototype.forEach.call(this.parts.root.querySelectorAll('[data-pane]'), function (pane) {
      pane.hidden = pane.getAttribute('data-pane') !== id;
    });
    if (id === 'versions') this.renderVersions();
  };

  Editor.prototype.status = function (message, isError) {
    var s = this.parts.status;
    s.textContent = message || '';
    s.classList.toggle('xe-error', !!isError);
  };

  Editor.prototype.fail = function (e) {
    this.status(e && e.message ? e.message : String(e), true);
  };

  Editor.prototype.fatal = function (message) {
    clear(this.parts.root).appendChild(h('div', { class: 'xe-fatal', 'data-test': 'fatal' }, message));
  };

  Editor.prototype.renderList = function () {
    var self = this;
    var groups = {};
    var all = this.list.slice();
    var c = this.current;
    // A new extension shows in its group before it is deployed.
    if (c && !this.list.some(function (w) { return w.name === c.name; })) {
      all.push({ name: c.name, meta: c.meta, unsaved: true });
    }
    all.forEach(function (w) {
      var point = (w.meta && w.meta[EXTENSION_TYPE]) || '';
      (groups[point] = groups[point] || []).push(w);
    });
    var names = Object.keys(groups).sort();
    clear(this.parts.list);
    names.forEach(function (point) {
      var known = self.point(point);
      self.parts.list.appendChild(h('div', { class: 'xe-group', 'data-point': point },
        h('div', { class: 'xe-group-name', title: known ? known.description : '' },
          point || 'not an extension point', known ? h('span', { class: 'xe-mode' }, known.mode) : null),
        groups[point].sort(function (a, b) { return a.name < b.name ? -1 : 1; }).map(function (w) {
          var active = self.current && self.current.name === w.name;
          return h('button', {
            class: 'xe-item' + (active ? ' xe-active' : ''), 'data-name': w.name,
            onclick: function () { self.confirmLeave() && self.open(w.name).catch(self.fail.bind(self)); }
          }, w.name, w.unsaved || w.draftOnly ? h('span', { class: 'xe-hint' }, w.draftOnly ? ' (draft, not deployed)' : ' (not deployed)') : null);
        })));
    });
  };

  Editor.prototype.confirmLeave = function () {
    return !(this.current && this.current.dirty) || global.confirm('Leave unsaved changes to ' + this.current.name + '?');
  };

  // ----------------------------------------------------------- open / new

  /**
   * Opens a webtask: its draft when it has one, otherwise its live code.
   * `current` = {name, live, draft, code, meta, secretNames, secretChanges, dirty, isNew}.
   */
  Editor.prototype.open = function (name) {
    var self = this;
    var api = this.api;
    this.status('Opening ' + name + '…');
    // In a promise, so that a bad name (from a fragment) rejects, not throws.
    return Promise.resolve().then(function () {
      return Promise.all([
        api.maybe('GET', api.path(name) + '?fetch_code=true', null),
        api.maybe('GET', api.path(name, '/draft'), null),
        api.maybe('GET', api.path(name, '/versions'), [])
      ]);
    }).then(function (r) {
      var live = r[0];
      var draft = r[1];
      if (!live && !draft) throw new ApiError(404, 'container `' + self.config.container + '` has no extension `' + name + '`');
      var versions = r[2] || [];
      var source = draft || live;
      self.current = {
        name: name,
        live: live,
        draft: draft,
        versions: versions,
        meta: Object.assign({}, source.meta || {}),
        secretNames: (draft && draft.secrets) || (versions[0] && versions[0].secrets) || [],
        secretChanges: {},
        dirty: false,
        isNew: !live
      };
      self.setCode(source.code || '');
      self.afterOpen();
      self.status(draft ? 'Opened the draft of ' + name + ' (saved ' + time(draft.saved_at) + '); the live version is unchanged.' : '');
      self.restoreLocal();
    });
  };

  /** A new, unsaved extension for `point` from its starter template. */
  Editor.prototype.openNew = function (point, name) {
    var self = this;
    var p = this.point(point);
    if (!p) return Promise.reject(new ApiError(400, point ? 'the platform publishes no point `' + point + '`' : 'choose an extension point'));
    return this.api.maybe('GET', '/api/catalog/' + encodeURIComponent(point) + '/template.js', null).then(function (template) {
      var changes = {};
      changes[RUN_SECRET] = randomHex(32);
      var meta = {};
      meta[EXTENSION_TYPE] = point;
      self.current = {
        name: name,
        live: null,
        draft: null,
        versions: [],
        meta: meta,
        secretNames: [],
        secretChanges: changes,
        dirty: true,
        isNew: true
      };
      self.setCode(template || '// @ts-check\nmodule.exports = function (ctx, cb) {\n  cb(null, {});\n};\n');
      self.current.dirty = true;
      self.afterOpen();
      self.status('New extension ' + name + ' for ' + point + ' from its template: save a draft or deploy it.');
    });
  };

  Editor.prototype.setCode = function (code) {
    var m = this.monaco;
    var old = this.code.getModel();
    // One file per extension, beside ./extend-types.d.ts, so that the
    // template's `import('./extend-types')` resolves.
    var uri = m.Uri.parse('file:///' + encodeURIComponent(this.current.name) + '.js');
    var existing = m.editor.getModel(uri);
    if (existing) existing.dispose();
    this.loading = true;
    this.code.setModel(m.editor.createModel(code, 'javascript', uri));
    this.loading = false;
    if (old && old !== this.code.getModel()) old.dispose();
  };

  /** Where this browser keeps the unsaved code of the current extension. */
  Editor.prototype.localKey = function (name) {
    return 'extend-editor:' + this.config.hostUrl + ':' + this.config.container + ':' + name;
  };

  /** Keeps the unsaved code in this browser (localStorage), if it can. */
  Editor.prototype.keepLocal = function () {
    var c = this.current;
    if (!c) return;
    try {
      global.localStorage.setItem(this.localKey(c.name), JSON.stringify({ code: this.code.getValue(), at: Date.now() }));
    } catch (e) { /* storage full or disabled: the unload warning remains */ }
  };

  /** Forgets the local copy: what it held was saved or thrown away. */
  Editor.prototype.dropLocal = function (name) {
    try { global.localStorage.removeItem(this.localKey(name)); } catch (e) { /* nothing kept */ }
  };

  /** Puts back unsaved code this browser kept for the opened extension. */
  Editor.prototype.restoreLocal = function () {
    var c = this.current;
    var kept = null;
    try { kept = JSON.parse(global.localStorage.getItem(this.localKey(c.name)) || 'null'); } catch (e) { kept = null; }
    if (!kept || typeof kept.code !== 'string' || kept.code === this.code.getValue()) return false;
    this.code.setValue(kept.code);
    c.dirty = true;
    this.renderState();
    this.status('Restored unsaved changes to ' + c.name + ' kept in this browser (' + time(Math.floor(kept.at / 1000)) + '): save the draft to keep them, or discard them.');
    return true;
  };

  Editor.prototype.afterOpen = function () {
    this.deployArmed = false;
    this.config.onNavigate(this.current.name);
    this.renderList();
    this.renderState();
    this.renderSecrets();
    this.renderMeta();
    this.renderRunner();
    this.renderReplay();
    if (this.tab === 'versions') this.renderVersions();
    this.scheduleCheck();
  };

  Editor.prototype.renderState = function () {
    var c = this.current;
    var p = this.parts;
    p.name.textContent = c ? c.name : '';
    var state = '';
    if (c) {
      var live = c.live ? 'live v' + ((c.versions[0] && c.versions[0].version) || '?') : 'not deployed';
      state = live + (c.draft ? ' · draft saved ' + time(c.draft.saved_at) : '') + (c.dirty ? ' · unsaved changes' : '');
    }
    p.state.textContent = state;
    ['save', 'deploy', 'rename', 'delete', 'discard'].forEach(function (id) { if (p[id]) p[id].disabled = !c; });
    if (p.discard) p.discard.disabled = !(c && c.draft);
    if (p.rename) p.rename.disabled = !(c && c.live);
    if (p.delete) p.delete.disabled = !(c && (c.live || c.draft));
    p.deploy.textContent = this.deployArmed ? 'Deploy anyway' : 'Deploy';
  };

  Editor.prototype.showNewForm = function () {
    var self = this;
    var points = this.points();
    var d = clear(this.parts.dialog);
    d.hidden = false;
    if (!points.length) {
      d.appendChild(h('span', {}, 'The platform has published no extension points yet.'));
      return;
    }
    var select = h('select', { 'data-test': 'new-point', 'aria-label': 'Extension point' }, points.map(function (p) {
      return h('option', { value: p.name }, p.name + ' (' + p.mode + ')');
    }));
    var name = h('input', { 'data-test': 'new-name', 'aria-label': 'Name of the new extension', placeholder: 'name', value: points[0].name });
    select.addEventListener('change', function () { name.value = select.value; });
    d.appendChild(h('form', {
      class: 'xe-inline', onsubmit: function (e) {
        e.preventDefault();
        var problem = nameProblem('webtask', name.value.trim());
        if (problem) return self.status(problem, true);
        if (self.list.some(function (w) { return w.name === name.value.trim(); })) {
          return self.status('an extension named `' + name.value + '` already exists', true);
        }
        if (!self.confirmLeave()) return;
        d.hidden = true;
        var same = self.list.filter(function (w) { return w.meta && w.meta[EXTENSION_TYPE] === select.value && !w.draftOnly; });
        self.openNew(select.value, name.value.trim()).then(function () {
          if (same.length) {
            self.status('Container ' + self.config.container + ' already has ' + same.map(function (w) { return '`' + w.name + '`'; }).join(', ') +
              ' for ' + select.value + ': once this one is deployed, discovery finds more than one and the platform\u2019s calls fail as ambiguous until all but one are removed or disabled.', true);
          }
        }).catch(self.fail.bind(self));
      }
    }, 'New extension for ', select, ' named ', name,
    h('button', { class: 'xe-button xe-primary', type: 'submit', 'data-test': 'create' }, 'Create from template'),
    h('button', { class: 'xe-link', type: 'button', onclick: function () { d.hidden = true; } }, 'cancel')));
  };

  // ----------------------------------------------------- problems (types)

  Editor.prototype.scheduleCheck = function () {
    var self = this;
    clearTimeout(this.checkTimer);
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

  // ------------------------------------------------------ save and deploy

  /** The draft body: code, metadata and the secret changes since the last save. */
  Editor.prototype.draftBody = function () {
    var c = this.current;
    var body = { code: this.code.getValue(), meta: c.meta };
    if (Object.keys(c.secretChanges).length) body.secret_changes = c.secretChanges;
    return body;
  };

  Editor.prototype.saveDraft = function () {
    var self = this;
    var c = this.current;
    if (!c) return Promise.resolve();
    var name = c.name;
    return this.api.call('PUT', this.api.path(name, '/draft'), this.draftBody()).then(function (draft) {
      if (!self.current || self.current.name !== name) return;
      c.draft = draft;
      if (draft.secrets) c.secretNames = draft.secrets;
      c.secretChanges = {};
      c.dirty = false;
      self.dropLocal(name);
      self.renderState();
      self.renderSecrets();
      self.status('Draft saved. Discovery still finds the live version' + (c.live ? '' : ' (there is none yet)') + '.');
      return draft;
    });
  };

  Editor.prototype.deploy = function () {
    var self = this;
    var c = this.current;
    if (!c) return Promise.resolve();
    if (this.deployArmed) return this.deployNow();
    return this.checkTypes().then(function (list) {
      return self.deployChecked(list.length);
    }, function () {
      return self.deployChecked(0);
    });
  };

  Editor.prototype.deployChecked = function (problems) {
    var self = this;
    if (problems && !this.deployArmed) {
      this.deployArmed = true;
      this.renderState();
      this.showTab('code');
      this.status(problems + (problems === 1 ? ' type error' : ' type errors') + ' in the code: fix it, or press Deploy again to deploy anyway.', true);
      return Promise.resolve();
    }
    return this.deployNow();
  };

  Editor.prototype.deployNow = function () {
    var self = this;
    var c = this.current;
    this.deployArmed = false;
    this.status('Deploying…');
    return this.saveDraft().then(function () {
      return self.api.call('POST', self.api.path(c.name, '/draft/deploy'));
    }).then(function () {
      return self.refreshList();
    }).then(function () {
      return self.open(c.name);
    }).then(function () {
      self.status('Deployed ' + c.name + ' as version ' + ((self.current.versions[0] || {}).version || '?') + '.');
    }).catch(this.fail.bind(this));
  };

  Editor.prototype.discardDraft = function () {
    var self = this;
    var c = this.current;
    if (!c || !c.draft) return;
    this.api.call('DELETE', this.api.path(c.name, '/draft')).then(function () {
      self.dropLocal(c.name);
      c.dirty = false;
      if (c.live) return self.open(c.name);
      self.current = null;
      return self.refreshList().then(function () { self.setBlank(); });
    }).then(function () { self.status('Draft discarded.'); }).catch(this.fail.bind(this));
  };

  Editor.prototype.setBlank = function () {
    this.loading = true;
    this.code.setValue('');
    this.loading = false;
    this.renderState();
    this.renderList();
  };

  /**
   * The container's extensions: the live ones, and drafts of names never
   * deployed (`draftOnly`), which a reload would otherwise lose sight of.
   */
  Api.prototype.extensions = function () {
    return Promise.all([
      this.call('GET', this.path()),
      this.maybe('GET', '/api/drafts/' + encodeURIComponent(this.container), [])
    ]).then(function (r) {
      var list = (r[0] || []).slice();
      (r[1] || []).forEach(function (d) {
        if (!list.some(function (w) { return w.name === d.name; })) {
          list.push({ name: d.name, meta: d.meta, draftOnly: true });
        }
      });
      return list;
    });
  };

  Editor.prototype.refreshList = function () {
    var self = this;
    return this.api.extensions().then(function (list) {
      self.list = list || [];
      self.renderList();
    });
  };

  Editor.prototype.showRename = function () {
    var self = this;
    var c = this.current;
    if (!c || !c.live) return;
    var d = clear(this.parts.dialog);
    d.hidden = false;
    var input = h('input', { 'data-test': 'rename-to', value: c.name });
    d.appendChild(h('form', {
      class: 'xe-inline', onsubmit: function (e) {
        e.preventDefault();
        var to = input.value.trim();
        if (to === c.name) { d.hidden = true; return; }
        var problem = nameProblem('webtask', to);
        if (problem) return self.status(problem, true);
        self.api.call('POST', self.api.path(c.name, '/rename'), { name: to }).then(function () {
          d.hidden = true;
          return self.refreshList();
        }).then(function () { return self.open(to); }).then(function () {
          self.status('Renamed ' + c.name + ' to ' + to + '.');
        }).catch(self.fail.bind(self));
      }
    }, 'Rename ', h('b', {}, c.name), ' to ', input,
    h('button', { class: 'xe-button xe-primary', type: 'submit', 'data-test': 'rename-ok' }, 'Rename'),
    h('button', { class: 'xe-link', type: 'button', onclick: function () { d.hidden = true; } }, 'cancel')));
    input.focus();
  };

  Editor.prototype.remove = function () {
    var self = this;
    var c = this.current;
    if (!c) return;
    var d = clear(this.parts.dialog);
    d.hidden = false;
    d.appendChild(h('div', { class: 'xe-inline' }, 'Delete ', h('b', {}, c.name), ' and its draft? Its URL stops answering at once.',
      h('button', {
        class: 'xe-button xe-danger', 'data-test': 'delete-ok', onclick: function () {
          var gone = c.live ? self.api.call('DELETE', self.api.path(c.name)) : Promise.resolve();
          gone.then(function () {
            return self.api.maybe('DELETE', self.api.path(c.name, '/draft'), null);
          }).then(function () {
            d.hidden = true;
            self.current = null;
            return self.refreshList();
          }).then(function () {
            self.setBlank();
            self.status('Deleted ' + c.name + '.');
          }).catch(self.fail.bind(self));
        }
      }, 'Delete'),
      h('button', { class: 'xe-link', onclick: function () { d.hidden = true; } }, 'cancel')));
  };

  // ------------------------------------------------------------- secrets

  Editor.prototype.renderSecrets = function () {
    var self = this;
    var c = this.current;
    var p = clear(this.parts.secrets);
    if (!c) return;
    var editable = this.config.allowEditingSecrets;
    p.appendChild(h('p', { class: 'xe-hint' }, 'Secrets reach the code as ctx.secrets. Their values are sealed by the host and never shown again once saved.'));
    var names = c.secretNames.slice();
    Object.keys(c.secretChanges).forEach(function (n) { if (names.indexOf(n) < 0) names.push(n); });
    var rows = names.sort().map(function (n) {
      var change = c.secretChanges[n];
      var platform = n === RUN_SECRET;
      var state = change === null ? 'to be deleted' : change !== undefined ? 'changed, not saved yet' : 'saved';
      var value = h('input', { type: 'password', placeholder: 'new value', 'aria-label': 'New value of ' + n, 'data-secret-value': n, disabled: platform || !editable });
      return h('tr', { 'data-secret': n },
        h('td', { class: 'xe-key' }, n),
        h('td', {}, platform ? 'set by the platform' : '••••••••  (' + state + ')'),
        h('td', {}, platform || !editable ? null : [value,
          h('button', { class: 'xe-button', 'data-test': 'secret-replace', onclick: function () {
            if (!value.value) return self.status('type the new value of ' + n + ' first', true);
            self.changeSecret(n, value.value);
          } }, 'Replace'),
          h('button', { class: 'xe-button xe-danger', 'data-test': 'secret-delete', onclick: function () { self.changeSecret(n, null); } }, 'Delete')]));
    });
    p.appendChild(h('table', { class: 'xe-table' }, rows.length ? rows : h('tr', {}, h('td', {}, 'No secrets.'))));
    if (!editable) return;
    var key = h('input', { 'data-test': 'secret-name', 'aria-label': 'Secret name', placeholder: 'name' });
    var val = h('input', { 'data-test': 'secret-value', 'aria-label': 'Secret value', type: 'password', placeholder: 'value' });
    p.appendChild(h('form', {
      class: 'xe-inline', onsubmit: function (e) {
        e.preventDefault();
        var n = key.value.trim();
        if (!n) return self.status('a secret needs a name', true);
        if (n === RUN_SECRET) return self.status(RUN_SECRET + ' is set by the platform', true);
        self.changeSecret(n, val.value);
      }
    }, 'Add ', key, val, h('button', { class: 'xe-button', type: 'submit', 'data-test': 'secret-add' }, 'Add')));
    p.appendChild(h('p', { class: 'xe-hint' }, 'Changes apply with the next draft save, run or deploy.'));
  };

  Editor.prototype.changeSecret = function (name, value) {
    this.current.secretChanges[name] = value;
    this.current.dirty = true;
    this.renderSecrets();
    this.renderState();
  };

  // ------------------------------------------------------------ metadata

  Editor.prototype.renderMeta = function () {
    var self = this;
    var c = this.current;
    var p = clear(this.parts.meta);
    if (!c) return;
    var editable = this.config.allowEditingMeta;
    var rows = Object.keys(c.meta).sort().map(function (k) {
      var platform = k.indexOf('auth0-extension') === 0;
      var input = h('input', { value: c.meta[k], 'aria-label': 'Value of ' + k, 'data-meta-value': k, readonly: platform || !editable });
      input.addEventListener('change', function () { c.meta[k] = input.value; c.dirty = true; self.renderState(); });
      return h('tr', { 'data-meta': k }, h('td', { class: 'xe-key' }, k), h('td', {}, input),
        h('td', {}, platform ? 'set by the platform' : editable ? h('button', {
          class: 'xe-button xe-danger', onclick: function () { delete c.meta[k]; c.dirty = true; self.renderMeta(); self.renderState(); }
        }, 'Remove') : null));
    });
    p.appendChild(h('table', { class: 'xe-table' }, rows));
    if (!editable) return;
    var key = h('input', { placeholder: 'key', 'aria-label': 'Metadata key', 'data-test': 'meta-key' });
    var value = h('input', { placeholder: 'value', 'aria-label': 'Metadata value', 'data-test': 'meta-value' });
    p.appendChild(h('form', {
      class: 'xe-inline', onsubmit: function (e) {
        e.preventDefault();
        var k = key.value.trim();
        if (!k) return;
        if (k.indexOf('auth0-extension') === 0) return self.status(k + ' is set by the platform', true);
        c.meta[k] = value.value;
        c.dirty = true;
        self.renderMeta();
        self.renderState();
      }
    }, 'Add ', key, value, h('button', { class: 'xe-button', type: 'submit' }, 'Add')));
  };

  // ------------------------------------------------------------ versions

  /** Who deployed, in words: this editor's token, the platform, or another token. */
  Editor.prototype.who = function (jti) {
    if (!jti) return '';
    if (jti === this.ownJti()) return 'you (this editor\u2019s token)';
    return 'another token (' + jti.slice(0, 8) + '\u2026)';
  };

  /** The id (`jti`) of this editor's token, read from its payload. */
  Editor.prototype.ownJti = function () {
    if (this.jti !== undefined) return this.jti;
    this.jti = null;
    try {
      var part = this.config.token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      this.jti = JSON.parse(global.atob(part + '==='.slice((part.length + 3) % 4))).jti || null;
    } catch (e) { /* not a JWT: nothing to match */ }
    return this.jti;
  };

  Editor.prototype.renderVersions = function () {
    var self = this;
    var c = this.current;
    var p = clear(this.parts.versions);
    if (!c) return;
    if (!c.live) {
      p.appendChild(h('p', {}, 'Not deployed yet: no versions.'));
      return;
    }
    var view = h('pre', { class: 'xe-pre', hidden: true, 'data-test': 'version-code' });
    p.appendChild(h('table', { class: 'xe-table' },
      h('tr', {}, h('th', {}, 'version'), h('th', {}, 'deployed'), h('th', {}, 'by'), h('th', {}, 'secrets'), h('th', {})),
      c.versions.map(function (v, i) {
        return h('tr', { 'data-version': v.version },
          h('td', {}, 'v' + v.version + (i === 0 ? ' (live)' : '')),
          h('td', {}, time(v.deployed_at)),
          h('td', { title: v.deployed_by || '' }, self.who(v.deployed_by)),
          h('td', {}, (v.secrets || []).join(', ')),
          h('td', {},
            h('button', { class: 'xe-button', onclick: function () {
              self.api.call('GET', self.api.path(c.name, '/versions/' + v.version)).then(function (full) {
                view.hidden = false;
                view.textContent = full.code;
              }).catch(self.fail.bind(self));
            } }, 'View'),
            i === 0 ? null : h('button', { class: 'xe-button', 'data-test': 'rollback', onclick: function () { self.rollback(v.version); } }, 'Roll back')));
      })));
    p.appendChild(view);
  };

  Editor.prototype.rollback = function (version) {
    var self = this;
    var name = this.current.name;
    this.api.call('POST', this.api.path(name, '/versions/' + version + '/rollback')).then(function (r) {
      return self.open(name).then(function () {
        var missing = (r && r.secrets_missing) || [];
        self.status('Rolled back to the code and metadata of v' + version + '.' +
          (missing.length ? ' That version also had the secrets ' + missing.join(', ') + ', which are gone now.' : ''));
        self.showTab('versions');
      });
    }).catch(this.fail.bind(this));
  };

  // -------------------------------------------------------------- runner

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
    var controller = global.AbortController ? new global.AbortController() : null;
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

  // -------------------------------------- replaying recorded inputs

  Editor.prototype.renderReplay = function () {
    var self = this;
    var c = this.current;
    var p = clear(this.parts.replay);
    if (!c) return;
    var point = this.point(c.meta[EXTENSION_TYPE]);
    p.appendChild(h('p', { class: 'xe-hint' },
      'Runs the draft and the live version on the last inputs the live version received ' +
      '(recorded where the platform allows it, sensitive fields redacted), and compares their answers.'));
    var out = h('div', { 'data-test': 'replay-result' });
    p.appendChild(h('button', {
      class: 'xe-button xe-primary', 'data-test': 'replay', disabled: !c.live, onclick: function () {
        clear(out).appendChild(h('div', {}, 'Running…'));
        self.saveDraft().then(function () {
          return self.api.call('POST', self.api.path(c.name, '/draft/replay'));
        }).then(function (r) { self.showReplay(out, r, point); }).catch(function (e) { clear(out); self.fail(e); });
      }
    }, 'Run the draft on recorded inputs'));
    p.appendChild(out);
  };

  /** Classifies each input: same, changed, failed (the draft errs), or off-schema. */
  Editor.prototype.showReplay = function (out, r, point) {
    var self = this;
    var inputs = (r && r.inputs) || [];
    clear(out);
    if (!inputs.length) {
      out.appendChild(h('p', {}, r && r.recording === false
        ? 'The platform does not record inputs of ' + (point ? point.name : 'this point') + ' (its catalog must opt in).'
        : 'No inputs recorded yet: they are recorded as the live version runs.'));
      return;
    }
    var counts = { same: 0, changed: 0, failed: 0, 'off-schema': 0 };
    var rows = inputs.map(function (input, i) {
      var verdict;
      var errors = [];
      var draftOk = input.draft.status < 400;
      if (!draftOk) verdict = 'failed';
      else if (point && point.response_schema && (errors = validate(point.response_schema, input.draft.body)).length) verdict = 'off-schema';
      else if (input.live.status !== input.draft.status || !deepEqual(input.live.body, input.draft.body)) verdict = 'changed';
      else verdict = 'same';
      counts[verdict]++;
      return h('tr', { class: 'xe-verdict-' + verdict, 'data-verdict': verdict },
        h('td', {}, String(i + 1), h('div', { class: 'xe-hint' }, time(input.recorded_at))),
        h('td', {}, h('pre', { class: 'xe-pre' }, pretty(input.request.body))),
        h('td', {}, h('b', {}, String(input.live.status)), h('pre', { class: 'xe-pre' }, pretty(input.live.body))),
        h('td', {}, h('b', {}, String(input.draft.status)), h('pre', { class: 'xe-pre' }, pretty(input.draft.body))),
        h('td', { 'data-test': 'verdict' }, verdict === 'off-schema' ? 'no longer matches the response schema' : verdict,
          errors.length ? h('ul', {}, errors.map(function (e) { return h('li', {}, h('code', {}, e.pointer || '/'), ' ' + e.message); })) : null));
    });
    out.appendChild(h('p', { 'data-test': 'replay-summary' }, inputs.length + ' recorded inputs: ' + counts.changed + ' changed, ' +
      counts.failed + ' failed, ' + counts['off-schema'] + ' no longer match the response schema, ' + counts.same + ' unchanged.'));
    out.appendChild(h('table', { class: 'xe-table xe-replay' },
      h('tr', {}, h('th', {}, '#'), h('th', {}, 'input'), h('th', {}, 'live'), h('th', {}, 'draft'), h('th', {}, '')), rows));
    self.status(counts.changed + counts.failed + counts['off-schema'] ? 'The draft answers differently: check before deploying.' : 'The draft answers as the live version does.');
  };

  // ---------------------------------------------------------------- logs

  /** Follows the container's log stream, reconnecting with backoff. */
  Editor.prototype.streamLogs = function () {
    var self = this;
    var delay = 500;
    var connect = function () {
      if (self.closed) return;
      var abort = new AbortController();
      self.logAbort = abort;
      fetch(self.config.hostUrl + '/api/logs/tenant/' + encodeURIComponent(self.config.container), {
        headers: { Authorization: 'Bearer ' + self.config.token, Accept: 'text/event-stream' },
        signal: abort.signal
      }).then(function (res) {
        if (!res.ok || !res.body) throw new Error('log stream answered ' + res.status);
        delay = 500;
        self.parts.logs.setAttribute('data-connected', 'true');
        var reader = res.body.getReader();
        var decoder = new TextDecoder();
        var buffer = '';
        var pump = function () {
          return reader.read().then(function (chunk) {
            if (chunk.done) return;
            buffer += decoder.decode(chunk.value, { stream: true });
            var events = buffer.split('\n\n');
            buffer = events.pop();
            events.forEach(function (e) {
              var data = e.split('\n').filter(function (l) { return l.indexOf('data:') === 0; })
                .map(function (l) { return l.slice(5).trim(); }).join('\n');
              if (data) self.logLine(data);
            });
            return pump();
          });
        };
        return pump();
      }).catch(function () { /* reconnect below */ }).then(function () {
        self.parts.logs.removeAttribute('data-connected');
        if (self.closed) return;
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 10000);
      });
    };
    connect();
  };

  Editor.prototype.logLine = function (data) {
    var parsed = parseJson(data);
    var r = parsed.error ? { msg: data } : parsed.value;
    var logs = this.parts.logs;
    var at = r.time ? new Date(r.time).toLocaleTimeString() : new Date().toLocaleTimeString();
    logs.appendChild(h('div', { class: 'xe-log' + (r.level >= 50 ? ' xe-bad-text' : ''), 'data-test': 'log-line' },
      h('span', { class: 'xe-hint' }, at + ' '), r.webtask ? h('span', { class: 'xe-log-name' }, r.webtask + ' ') : null, String(r.msg)));
    while (logs.childNodes.length > 500) logs.removeChild(logs.firstChild);
    logs.scrollTop = logs.scrollHeight;
  };

  Editor.prototype.close = function () {
    this.closed = true;
    if (this.logAbort) this.logAbort.abort();
    if (this.code) {
      var model = this.code.getModel();
      this.code.dispose();
      if (model) model.dispose();
    }
    clear(this.el);
  };

  // ------------------------------------------------------------- public

  global.ExtendEditor = {
    /**
     * Shows the editor in `element`. Resolves to a handle with `close()`.
     * See the README ("The Extension Editor") for the options.
     */
    show: function (element, config) {
      if (!element) return Promise.reject(new Error('ExtendEditor.show needs an element'));
      var editor = new Editor(element, normalize(config));
      return editor.start().then(function () {
        return { close: function () { editor.close(); }, editor: editor };
      });
    },
    /** Starts loading the code editor before `show`, e.g. on page load. */
    preload: function (config) {
      return loadMonaco(normalize(config).hostUrl);
    },
    /** The response-schema check the runner uses, for the platform's own pages. */
    validate: validate
  };
})(window);
