/*
 * The Extension Editor of extend-host: `ExtendEditor.show(element, config)`.
 *
 * A platform loads this script from its host (`<script src="{host}/editor.js">`)
 * and shows the editor in one of its own elements with a tenant token. The
 * editor calls the host's management API with that token and nothing else,
 * so it can do exactly what the token can: one container, its webtasks.
 *
 * This classic script only defines `window.ExtendEditor`; the editor itself
 * is ES modules in editor/app/js (served at {host}/editor/js/), one per job,
 * loaded on first use with no build step. The only third-party code is the
 * vendored Monaco editor (editor/vendor/monaco, rebuilt by editor/vendor.sh).
 */
(function (global) {
  'use strict';

  var script = document.currentScript && document.currentScript.src;
  var host = script ? new URL(script, location.href).origin : location.origin;
  var loaded = null;

  /** The editor's entry module, imported once per page from the host. */
  function load() {
    if (!loaded) loaded = import(host + '/editor/js/main.js');
    return loaded;
  }

  global.ExtendEditor = {
    /**
     * Shows the editor in `element`. Resolves to a handle with `close()`.
     * See the README ("The Extension Editor") for the options.
     */
    show: function (element, config) {
      return load().then(function (m) { return m.show(element, config); });
    },
    /** Starts loading the editor and Monaco before `show`, e.g. on page load. */
    preload: function (config) {
      return load().then(function (m) { return m.preload(config); });
    },
    /**
     * The response-schema check the runner uses, for the platform's own
     * pages: resolves to the list of problems (empty when `value` conforms).
     */
    validate: function (schema, value) {
      return load().then(function (m) { return m.validate(schema, value); });
    }
  };
})(window);
