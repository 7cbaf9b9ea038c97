#!/usr/bin/env bash
# Prepare the browser tests: Debian's Chromium and the Vite page built with the real autumn-js hooks.
# Idempotent: each step runs only when its output is missing or older than its inputs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
web="$here/web"

if [ ! -x /usr/bin/chromium ]; then
  echo "setup.sh: installing Debian chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q chromium
fi

cd "$web"
# npm ci when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup.sh: npm ci in $web"
  npm ci --no-audit --no-fund
fi

# Rebuild when a build is missing or any input is newer than it: dist/ holds the page with autumn-js
# 1.2.28, dist-latest/ the same page with the newest 1.x (the npm alias autumn-js-latest).
stale=0
for built in dist/index.html dist-latest/index.html; do
  if [ ! -f "$built" ]; then
    stale=1
  elif [ -n "$(find src index.html vite.config.js package.json package-lock.json -newer "$built" -print -quit)" ]; then
    stale=1
  fi
done
if [ "$stale" = 1 ]; then
  echo "setup.sh: building the test page (dist/ and dist-latest/)"
  npm run build
fi
echo "setup.sh: chromium $(/usr/bin/chromium --version 2>/dev/null | head -1); pages $web/dist/index.html, $web/dist-latest/index.html"
