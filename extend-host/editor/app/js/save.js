/*
 * Saving drafts and deploying them.
 */
import { Editor } from './core.js';
import { h, clear } from './util.js';
import { Api, nameProblem } from './api.js';

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
