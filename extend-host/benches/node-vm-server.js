// The comparison peer for the host benchmark: Node's `http` plus `vm`, running
// one webtask-style extension per context with a per-run timeout, the way the
// original webtask runtime bounded synchronous execution in-process.
// Usage: node node-vm-server.js <code-file>   (prints "listening on <port>";
// exits when its stdin closes, so that it dies with the bench that started
// it even when that bench is killed by a signal)
'use strict';
const http = require('http');
const vm = require('vm');
const fs = require('fs');

const code = fs.readFileSync(process.argv[2], 'utf8');
// Node's own fetch (undici), for extensions that call out.
const sandbox = vm.createContext({ fetch });
new vm.Script(
  `globalThis.__wt = (function () { const module = { exports: {} };
     (function (module, exports) {${code}\n})(module, module.exports); return module.exports; })();`
).runInContext(sandbox);
// Each run is a script run with `timeout`, which is Node's only in-process CPU limit.
// An async extension's promise is awaited outside the timeout, as the
// original runtime awaited I/O.
const invoke = new vm.Script('__result = undefined; __promise = __wt(__ctx, (e, r) => { __result = [e, r]; });');

http
  .createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const reply = (status, out) => {
        res.writeHead(status, { 'content-type': 'application/json', 'x-wt-response-source': 'webtask' });
        res.end(out);
      };
      try {
        sandbox.__ctx = { body: JSON.parse(Buffer.concat(chunks).toString() || '{}'), query: {}, headers: req.headers, secrets: {}, meta: {} };
        invoke.runInContext(sandbox, { timeout: 30000 });
        const p = sandbox.__promise;
        if (p && typeof p.then === 'function') {
          p.then((r) => reply(200, JSON.stringify(r)), (e) => reply(400, JSON.stringify({ code: 400, message: String(e && e.message) })));
          return;
        }
        const [e, r] = sandbox.__result || [new Error('no result')];
        if (e) reply(400, JSON.stringify({ code: 400, message: String(e.message) })); else reply(200, JSON.stringify(r));
      } catch (e) {
        reply(500, JSON.stringify({ code: 500, message: String(e && e.message) }));
      }
    });
  })
  .listen(0, '127.0.0.1', function () {
    console.log('listening on ' + this.address().port);
  });

// The bench holds the other end of stdin; the kernel closes it when the
// bench exits, however it exits.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
