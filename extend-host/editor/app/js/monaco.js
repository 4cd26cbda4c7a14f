/*
 * Loading the vendored Monaco editor and the editor's styles, once per page.
 */

var monacoPromise = null;

/** Loads the vendored Monaco once per page, from `hostUrl`. */
function loadMonaco(hostUrl) {
  if (monacoPromise) return monacoPromise;
  // Versioned: cached for good by the browser (MONACO_VERSION in api/editor.rs).
  var base = hostUrl + '/editor/monaco-0.52.2/';
  var vs = base + 'vs';
  monacoPromise = new Promise(function (resolve, reject) {
    if (window.monaco && window.monaco.editor) return resolve(window.monaco);
    var sameOrigin = new URL(hostUrl).origin === location.origin;
    window.MonacoEnvironment = {
      getWorkerUrl: function () {
        if (sameOrigin) return vs + '/base/worker/workerMain.js';
        // A worker must come from the page's origin: this one imports the host's.
        var src = 'self.MonacoEnvironment = { baseUrl: ' + JSON.stringify(base) +
          ' }; importScripts(' + JSON.stringify(vs + '/base/worker/workerMain.js') + ');';
        return 'data:text/javascript;charset=utf-8,' + encodeURIComponent(src);
      }
    };
    var loader = document.createElement('script');
    loader.src = vs + '/loader.js';
    loader.onerror = function () { reject(new Error('could not load the editor from ' + vs)); };
    loader.onload = function () {
      window.require.config({ paths: { vs: vs } });
      window.require(['vs/editor/editor.main'], function () { resolve(window.monaco); }, reject);
    };
    document.head.appendChild(loader);
  });
  return monacoPromise;
}

function loadStyles(hostUrl) {
  var href = hostUrl + '/editor/editor.css';
  if (document.querySelector('link[href="' + href + '"]')) return;
  var link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = href;
  document.head.appendChild(link);
}

export { monacoPromise, loadMonaco, loadStyles };
