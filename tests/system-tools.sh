#!/usr/bin/env bash
# The programs the suite drives that do not come from the package index: headless Chromium
# and its driver (the Prefect UI test) and Prometheus (the dashboard test), from Debian.
# `make test` runs this first; it installs only what is missing, as root or through sudo.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
[ "${#need[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "The test suite needs Debian packages that are not installed: ${need[*]}." >&2
  echo "Install them (apt-get install ${need[*]}) or run this as root." >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "The test suite needs ${need[*]} and this machine has no apt-get: install them." >&2
  exit 1
fi
echo "Installing ${need[*]} (Debian packages the suite drives) ..."
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
