#!/usr/bin/env bash
# Make sure the PC/SC stack the card tests need is installed: pcscd, the vsmartcard-vpcd driver, what
# pyscard needs to build (swig, libpcsclite-dev), and the souvenir ticket's Chinese font
# (fonts-wqy-microhei). Installs only what is missing (Debian, as root); quiet;
# exits 0 when everything is already present. Never starts pcscd: the tests run their own `pcscd -f`.
set -uo pipefail
wanted=(pcscd vsmartcard-vpcd swig libpcsclite-dev fonts-wqy-microhei)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for package in "${wanted[@]}"; do
  installed "$package" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "PC/SC packages missing (${missing[*]}) and cannot install them here: the card e2e tests will skip" >&2
  exit 0
fi
echo "installing ${missing[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  # A fresh machine may not have package lists yet.
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
    echo "could not install ${missing[*]}: the card e2e tests will skip (fail under CI=true)" >&2
  }
fi
exit 0
