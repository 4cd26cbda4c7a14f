/*
 * The live log stream of the container.
 */
import { Editor } from './core.js';
import { h, clear, parseJson } from './util.js';

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
