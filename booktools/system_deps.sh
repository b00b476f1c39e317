#!/usr/bin/env bash
# What the book's commands need from outside Python, installed when it is missing:
#
#   tools/system_deps.sh venv       Python's venv module (Debian ships it as python3-venv)
#   tools/system_deps.sh chromium   a Chromium for the browser test (make browser)
#
# Where from, in this order: the system's package manager (apt-get) when this user may use it
# (root, or sudo without a password); for Chromium, else Playwright's own browser download
# (.venv must exist), where the network allows it; else stop with the one command to run.
set -euo pipefail

as_root() {  # print the prefix that runs a command as root, or fail
  if [ "$(id -u)" -eq 0 ]; then echo ""; return 0; fi
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then echo "sudo"; return 0; fi
  return 1
}

apt_install() {  # apt_install PACKAGE...: true when installed from the package manager
  local prefix
  command -v apt-get >/dev/null 2>&1 || return 1
  prefix=$(as_root) || return 1
  local log="${TMPDIR:-/tmp}/book-apt-get.log"
  echo "== installing $* with apt-get (log: $log)"
  if $prefix apt-get update -qq >"$log" 2>&1 &&
    DEBIAN_FRONTEND=noninteractive $prefix apt-get install -y -qq "$@" >>"$log" 2>&1; then
    return 0
  fi
  tail -n 20 "$log" >&2
  return 1
}

need_venv() {
  python3 -c "import ensurepip, venv" >/dev/null 2>&1 && return 0
  apt_install python3-venv && return 0
  echo "Python's venv module is missing and could not be installed here (needs root or sudo)." >&2
  echo "Run: sudo apt-get install python3-venv   then run make again." >&2
  exit 1
}

need_chromium() {
  local system="${CHROMIUM:-/usr/bin/chromium}"
  [ -x "$system" ] && return 0
  command -v chromium >/dev/null 2>&1 && return 0
  apt_install chromium && return 0
  if [ -x .venv/bin/python ]; then
    if .venv/bin/python - <<'PY' 2>/dev/null; then return 0; fi
import os, sys
from playwright.sync_api import sync_playwright
with sync_playwright() as p:
    sys.exit(0 if os.path.exists(p.chromium.executable_path) else 1)
PY
    echo "== no system Chromium and no root: trying Playwright's own browser download"
    .venv/bin/python -m playwright install chromium && return 0
  fi
  echo "No Chromium for the browser test, and none could be installed here." >&2
  echo "Run: sudo apt-get install chromium   (or set CHROMIUM=/path/to/chromium), then make test." >&2
  exit 1
}

case "${1:-}" in
  venv) need_venv ;;
  chromium) need_chromium ;;
  *) echo "usage: tools/system_deps.sh venv|chromium" >&2; exit 2 ;;
esac
