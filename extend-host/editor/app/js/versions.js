/*
 * The Versions tab: history and rollback.
 */
import { Editor } from './core.js';
import { h, clear, time } from './util.js';

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
    this.jti = JSON.parse(window.atob(part + '==='.slice((part.length + 3) % 4))).jti || null;
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
