#!/usr/bin/env bash
# Installs the Debian packages MediaQueue builds and runs with, when any is missing.
set -euo pipefail
packages=(rabbitmq-server librabbitmq-dev libssl-dev libxml2-dev libcurl4-openssl-dev libsqlite3-dev ffmpeg pkg-config openssl python3-venv "$@")
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
