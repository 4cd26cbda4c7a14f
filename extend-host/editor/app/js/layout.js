/*
 * The editor's layout: the shell, tabs, panes and status line.
 */
import { Editor } from './core.js';
import { h, clear } from './util.js';
import { EXTENSION_TYPE } from './api.js';

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
  return !(this.current && this.current.dirty) || window.confirm('Leave unsaved changes to ' + this.current.name + '?');
};
