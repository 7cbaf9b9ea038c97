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

# Rebuild when dist is missing or any input is newer than the built page.
stale=0
if [ ! -f dist/index.html ]; then
  stale=1
elif [ -n "$(find src index.html vite.config.js package.json package-lock.json -newer dist/index.html -print -quit)" ]; then
  stale=1
fi
if [ "$stale" = 1 ]; then
  echo "setup.sh: building the test page"
  npm run build
fi
echo "setup.sh: chromium $(/usr/bin/chromium --version 2>/dev/null | head -1); page $web/dist/index.html"
