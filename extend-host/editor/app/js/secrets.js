/*
 * The Secrets tab.
 */
import { Editor } from './core.js';
import { h, clear } from './util.js';
import { RUN_SECRET } from './api.js';

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
    var value = h('input', { type: 'password', autocomplete: 'new-password', placeholder: 'new value', 'aria-label': 'New value of ' + n, 'data-secret-value': n, disabled: platform || !editable });
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
  var val = h('input', { 'data-test': 'secret-value', 'aria-label': 'Secret value', type: 'password', autocomplete: 'new-password', placeholder: 'value' });
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
