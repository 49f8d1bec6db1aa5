#!/usr/bin/env bash
# Installs what the browser tests need where it is missing: Debian's chromium
# (via apt-get, when run as root). Playwright's Python package comes from the
# test extras and drives this system browser; nothing is downloaded at run time.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-browser: installing Debian's chromium for the browser tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
else
  echo "ensure-browser: chromium is missing and this user cannot apt-get install it;" \
       "install Debian's 'chromium' package, or the browser tests will fail" >&2
fi
