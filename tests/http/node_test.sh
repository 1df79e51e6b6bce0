#!/usr/bin/env bash
# Runs one of tests/http/node's scripts with Node.js, after checking that
# setup.sh installed what it needs (node, the pinned npm packages, and for
# the page test Chromium): node_test.sh SCRIPT.mjs [ARGS...]
set -u
dir="$(cd "$(dirname "$0")/node" && pwd)"
fail() { echo "FAIL: $*"; exit 1; }
command -v node >/dev/null || fail "node is missing (run ./setup.sh)"
[[ -d $dir/node_modules/openai && -d $dir/node_modules/puppeteer-core ]] ||
  fail "$dir/node_modules is missing (run ./setup.sh: npm ci there)"
exec node "$dir/$1" "${@:2}"
