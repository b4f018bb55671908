#!/usr/bin/env bash
# Installs the tools only `make bench` compares against (its anchors), when missing:
# libbpf-tools (the compiled C syscount) and bpftrace. `make test` never runs this.
# Idempotent: when both are there it only checks.
set -euo pipefail

say() { printf 'bench-tools: %s\n' "$*" >&2; }

installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

missing=()
for p in libbpf-tools bpftrace; do
  installed "$p" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  say "no apt-get here: install ${missing[*]} by hand, or the bench leaves their rows empty"
  exit 0
fi
sudo_cmd=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then
    sudo_cmd=(sudo)
  else
    say "not root and no sudo: as root run: apt-get update && apt-get install -y ${missing[*]}"
    exit 0
  fi
fi
# Update the package lists only when apt does not know a package yet (a fresh machine).
for p in "${missing[@]}"; do
  if ! apt-cache show "$p" >/dev/null 2>&1; then
    say "apt-get update"
    "${sudo_cmd[@]}" apt-get update -q >/dev/null
    break
  fi
done
say "apt-get install ${missing[*]}"
# A tool that cannot be installed leaves its rows "did not run" with the reason; the bench
# itself still runs, so a failure here is said, not fatal.
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q "${missing[@]}" >/dev/null \
  || say "could not install ${missing[*]}; their rows will say why"
