/*
 * Replaying recorded inputs on the draft.
 */
import { Editor } from './core.js';
import { h, clear, pretty, time, deepEqual } from './util.js';
import { validate, check } from './schema.js';
import { EXTENSION_TYPE } from './api.js';

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
    // Requests each side made, answered from the recording (never sent again).
    var fetched = function (list) {
      if (!list || !list.length) return null;
      return h('ul', { class: 'xe-subrequests', 'data-test': 'replay-subrequests' }, list.map(function (s) {
        return h('li', {}, s.method + ' ' + s.url + ' \u2192 ' + (s.status !== undefined ? s.status : s.error));
      }));
    };
    return h('tr', { class: 'xe-verdict-' + verdict, 'data-verdict': verdict },
      h('td', {}, String(i + 1), h('div', { class: 'xe-hint' }, time(input.recorded_at))),
      h('td', {}, h('pre', { class: 'xe-pre' }, pretty(input.request.body))),
      h('td', {}, h('b', {}, String(input.live.status)), h('pre', { class: 'xe-pre' }, pretty(input.live.body)), fetched(input.live.subrequests)),
      h('td', {}, h('b', {}, String(input.draft.status)), h('pre', { class: 'xe-pre' }, pretty(input.draft.body)), fetched(input.draft.subrequests)),
      h('td', { 'data-test': 'verdict' }, verdict === 'off-schema' ? 'no longer matches the response schema' : verdict,
        input.subrequests_differ ? h('div', { class: 'xe-hint', 'data-test': 'replay-subrequests-differ' }, 'makes other requests than the live version') : null,
        input.needs_network ? h('div', { class: 'xe-bad-text', 'data-test': 'replay-needs-network' }, 'needs the network: a request the recorded run never made was refused (\u201cnot recorded\u201d)') : null,
        errors.length ? h('ul', {}, errors.map(function (e) { return h('li', {}, h('code', {}, e.pointer || '/'), ' ' + e.message); })) : null));
  });
  out.appendChild(h('p', { 'data-test': 'replay-summary' }, inputs.length + ' recorded inputs: ' + counts.changed + ' changed, ' +
    counts.failed + ' failed, ' + counts['off-schema'] + ' no longer match the response schema, ' + counts.same + ' unchanged.'));
  out.appendChild(h('table', { class: 'xe-table xe-replay' },
    h('tr', {}, h('th', {}, '#'), h('th', {}, 'input'), h('th', {}, 'live'), h('th', {}, 'draft'), h('th', {}, '')), rows));
  self.status(counts.changed + counts.failed + counts['off-schema'] ? 'The draft answers differently: check before deploying.' : 'The draft answers as the live version does.');
};
