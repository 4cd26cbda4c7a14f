/*
 * The editor's entry module: imports every part (each adds its methods to
 * `Editor`) and exports what `window.ExtendEditor` offers. editor.js, the
 * script platforms embed, loads it.
 */
import { Editor, normalize } from './core.js';
import { loadMonaco } from './monaco.js';
import { validate } from './schema.js';
import './layout.js';
import './open.js';
import './problems.js';
import './save.js';
import './secrets.js';
import './metadata.js';
import './versions.js';
import './runner.js';
import './replay.js';
import './logs.js';

/**
 * Shows the editor in `element`. Resolves to a handle with `close()`.
 * See the README ("The Extension Editor") for the options.
 */
export function show(element, config) {
  if (!element) return Promise.reject(new Error('ExtendEditor.show needs an element'));
  var editor = new Editor(element, normalize(config));
  return editor.start().then(function () {
    return { close: function () { editor.close(); }, editor: editor };
  });
}

/** Starts loading the code editor before `show`, e.g. on page load. */
export function preload(config) {
  return loadMonaco(normalize(config).hostUrl);
}

export { validate };
