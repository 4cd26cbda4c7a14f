// The comparison peer for the host benchmark: Node's `http` plus `vm`, running
// one webtask-style extension per context with a per-run timeout, the way the
// original webtask runtime bounded synchronous execution in-process.
// Usage: node node-vm-server.js <code-file>   (prints "listening on <port>")
'use strict';
const http = require('http');
const vm = require('vm');
const fs = require('fs');

const code = fs.readFileSync(process.argv[2], 'utf8');
const sandbox = vm.createContext({});
new vm.Script(
  `globalThis.__wt = (function () { const module = { exports: {} };
     (function (module, exports) {${code}\n})(module, module.exports); return module.exports; })();`
).runInContext(sandbox);
// Each run is a script run with `timeout`, which is Node's only in-process CPU limit.
const invoke = new vm.Script('__result = undefined; __wt(__ctx, (e, r) => { __result = [e, r]; });');

http
  .createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let status = 200;
      let out;
      try {
        sandbox.__ctx = { body: JSON.parse(Buffer.concat(chunks).toString() || '{}'), query: {}, headers: req.headers, secrets: {}, meta: {} };
        invoke.runInContext(sandbox, { timeout: 30000 });
        const [e, r] = sandbox.__result || [new Error('no result')];
        if (e) { status = 400; out = JSON.stringify({ code: 400, message: String(e.message) }); } else { out = JSON.stringify(r); }
      } catch (e) {
        status = 500;
        out = JSON.stringify({ code: 500, message: String(e && e.message) });
      }
      res.writeHead(status, { 'content-type': 'application/json', 'x-wt-response-source': 'webtask' });
      res.end(out);
    });
  })
  .listen(0, '127.0.0.1', function () {
    console.log('listening on ' + this.address().port);
  });
