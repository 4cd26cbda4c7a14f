/*
 * The host's management API as the editor calls it, with the tenant token
 * it was given, and the host's name rule checked in the form.
 */
import { parseJson } from './util.js';

var RUN_SECRET = 'auth0-extension-secret';
var EXTENSION_TYPE = 'auth0-extension-type';


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

export { RUN_SECRET, EXTENSION_TYPE, ApiError, Api, nameProblem };
