#!/usr/bin/env bash
# Rebuilds extend-host/editor/vendor/monaco from the pinned npm package.
#
# The editor's assets are embedded in the extend-host binary (build.rs), so
# nothing is fetched at run time. This script is the only way those files
# change: it installs the exact version below, checks the registry's
# integrity hash, and copies the subset the editor loads (the editor core,
# the JavaScript/TypeScript and JSON language services and their workers)
# with the license and third-party notices.
set -euo pipefail

VERSION=0.52.2
INTEGRITY=sha512-GEQWEZmfkOGLdd3XK8ryrfWz3AIP8YymVXiPHEdewrUq7mh0qrKrfHLNCXcbB6sTnMLnOZ3ztSiKcciFUkIJwQ==

here="$(cd "$(dirname "$0")" && pwd)"
out="$here/vendor/monaco"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "monaco-editor@$VERSION" > /dev/null
tarball="monaco-editor-$VERSION.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$INTEGRITY" ]; then
  echo "monaco-editor@$VERSION: integrity $actual, expected $INTEGRITY" >&2
  exit 1
fi
tar xzf "$tarball"

files=(
  loader.js
  editor/editor.main.js
  editor/editor.main.css
  base/worker/workerMain.js
  base/browser/ui/codicons/codicon/codicon.ttf
  basic-languages/javascript/javascript.js
  basic-languages/typescript/typescript.js
  language/typescript/tsMode.js
  language/typescript/tsWorker.js
  language/json/jsonMode.js
  language/json/jsonWorker.js
)
rm -rf "$out"
mkdir -p "$out/vs"
for f in "${files[@]}"; do
  mkdir -p "$out/vs/$(dirname "$f")"
  cp "package/min/vs/$f" "$out/vs/$f"
done
cp package/LICENSE "$out/LICENSE"
cp package/ThirdPartyNotices.txt "$out/ThirdPartyNotices.txt"
echo "monaco-editor@$VERSION $INTEGRITY" > "$out/VERSION"
echo "vendored monaco-editor@$VERSION into $out ($(du -sh "$out" | cut -f1))"
