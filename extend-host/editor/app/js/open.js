/*
 * Opening an extension (live or draft) and creating a new one.
 */
import { Editor } from './core.js';
import { h, clear, randomHex, time } from './util.js';
import { check } from './schema.js';
import { RUN_SECRET, EXTENSION_TYPE, ApiError, nameProblem } from './api.js';

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
  // An extension in one of the platform's languages (a Mustache template)
  // gets that language's syntax mode and no TypeScript check: the host's
  // compiler checks it when it runs.
  var language = this.languageOf(this.current.meta);
  var uri = m.Uri.parse('file:///' + encodeURIComponent(this.current.name) + (language ? '.' + encodeURIComponent(language.name) : '.js'));
  var existing = m.editor.getModel(uri);
  if (existing) existing.dispose();
  this.loading = true;
  this.code.setModel(m.editor.createModel(code, language ? language.mode : 'javascript', uri));
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
    window.localStorage.setItem(this.localKey(c.name), JSON.stringify({ code: this.code.getValue(), at: Date.now() }));
  } catch (e) { /* storage full or disabled: the unload warning remains */ }
};

/** Forgets the local copy: what it held was saved or thrown away. */
Editor.prototype.dropLocal = function (name) {
  try { window.localStorage.removeItem(this.localKey(name)); } catch (e) { /* nothing kept */ }
};

/** Puts back unsaved code this browser kept for the opened extension. */
Editor.prototype.restoreLocal = function () {
  var c = this.current;
  var kept = null;
  try { kept = JSON.parse(window.localStorage.getItem(this.localKey(c.name)) || 'null'); } catch (e) { kept = null; }
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
