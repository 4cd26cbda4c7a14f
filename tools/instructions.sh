#!/usr/bin/env bash
# Instructions a trivial run costs, counted by callgrind: unlike time, the
# count does not move with this machine's drift, so two builds can be told
# apart by a few hundred instructions a run (#26). Serves the `host` bench's
# hosts (`EXTEND_BENCH_ONLY=serve`, idle spinning off so that no spin loop is
# counted) under valgrind, posts RUNS requests of `{"x":21}` at c=1 to (a),
# worker processes, then to (a'), in-process, and prints per request: the
# worker process's instructions and the host process's, with the parts the
# JavaScript engine and its JSON take.
#
# usage: tools/instructions.sh [RUNS]      (default 2000; needs valgrind)
set -euo pipefail
runs=${1:-2000}
root=$(cd "$(dirname "$0")/.." && pwd)
command -v valgrind >/dev/null || { echo "tools/instructions.sh needs valgrind (apt-get install valgrind)" >&2; exit 2; }
cd "$root"
bench=$(cargo bench -p extend-host --bench host --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "host" and m.get("executable"):
        print(m["executable"])' | tail -n 1)
[ -n "$bench" ] || { echo "could not build the host bench" >&2; exit 1; }
out=$(mktemp -d)
host=
cleanup() {
    exec 3>&- 2>/dev/null || true
    [ -n "$host" ] && wait "$host" 2>/dev/null || true
    rm -rf "$out"
}
trap cleanup EXIT
cat > "$out/worker" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind -q --callgrind-out-file=$out/worker.%p "$root/target/release/extend-host" "\$@"
EOF
chmod +x "$out/worker"
mkfifo "$out/stdin"
(cd extend-host && EXTEND_BENCH_WORKER="$out/worker" EXTEND_BENCH_IDLE_SPIN=0 EXTEND_BENCH_ONLY=serve \
    exec valgrind --tool=callgrind -q --callgrind-out-file="$out/host.%p" "$bench" --bench) \
    < "$out/stdin" > "$out/serve" 2>&1 &
host=$!
# The bench serves until its stdin closes: this holds the only writer.
exec 3>"$out/stdin"
for _ in $(seq 1200); do grep -q '^raw axum' "$out/serve" && break; sleep 0.1; done
grep -q '^raw axum' "$out/serve" || { cat "$out/serve" >&2; exit 1; }
workers=$(awk '/^workers/ {print $2}' "$out/serve")
local=$(awk '/^in-process/ {print $2}' "$out/serve")

post() { # url count
    python3 - "$1" "$2" <<'EOF'
import http.client, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port)
for _ in range(int(sys.argv[2])):
    c.request("POST", u.path, body='{"x":21}', headers={"Content-Type": "application/json"})
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        sys.exit(f"{r.status} {body!r}")
EOF
}
post "$workers" 300
post "$local" 300
callgrind_control -z > /dev/null 2>&1
post "$workers" "$runs"
callgrind_control -d workers > /dev/null 2>&1
callgrind_control -z > /dev/null 2>&1
post "$local" "$runs"
callgrind_control -d in-process > /dev/null 2>&1

python3 - "$out" "$runs" <<'EOF'
import glob, re, subprocess, sys
out, runs = sys.argv[1], int(sys.argv[2])
def costs(path):
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                          capture_output=True, text=True, check=True).stdout
    found = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)", line)
        if m:
            found.setdefault(m.group(2).split(" [")[0], int(m.group(1).replace(",", "")))
    return found
def dump(prefix, trigger):
    for path in sorted(glob.glob(f"{out}/{prefix}.*.*")):
        with open(path, errors="replace") as f:
            head = f.read(4000)
        if re.search(rf"^desc: Trigger: dump {trigger}$", head, re.M):
            return costs(path)
    sys.exit(f"no {prefix} dump for {trigger} in {out}")
def part(c, name):
    return next((v for k, v in c.items() if k.endswith(name)), 0) / runs
# Under valgrind a run takes more than the engine's MEASURE_AFTER (1 ms) of
# CPU, so every run walks the heap (JS_ComputeMemoryUsage), which a real run
# does every 128th: counted apart and left out of the figures, or a slower
# machine would count thousands of instructions more a run.
def line(label, c):
    heap = part(c, ":JS_ComputeMemoryUsage")
    total = c.get("PROGRAM TOTALS", 0) / runs - heap
    js = part(c, "JsContainer::run") - heap
    parts = f"; JavaScript (JsContainer::run) {js:,.0f}: JSON.parse {part(c, ':js_json_parse'):,.0f}, " \
            f"JSON.stringify {part(c, ':JS_JSONStringify'):,.0f}" if js > 0 else ""
    left_out = f" (heap walks left out: {heap:,.0f})" if heap else ""
    print(f"{label:<34} {total:>9,.0f}{parts}{left_out}")
print(f"instructions a request (callgrind, {runs} requests at c=1, POST {{\"x\":21}}, idle spin off,")
print("without the heap walk a run under valgrind makes and a real run makes every 128th):")
line("(a) worker process", dump("worker", "workers"))
line("(a) host process", dump("host", "workers"))
line("(a') host process (in-process)", dump("host", "in-process"))
EOF
