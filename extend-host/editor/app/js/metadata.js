/*
 * The Metadata tab.
 */
import { Editor } from './core.js';
import { h, clear } from './util.js';

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
