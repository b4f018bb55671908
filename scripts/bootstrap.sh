#!/usr/bin/env bash
# Installs what sikte-tui needs to run and test, and nothing that is already there.
# Idempotent; when everything is in place it only checks (well under 5 s).
#   apt packages -> .venv (system Python, --system-site-packages, so bcc from apt is seen)
#   -> pip install -e '.[test]' (only when pyproject.toml changed since the last install)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'bootstrap: %s\n' "$*" >&2; }

kernel=$(uname -r)
arch=$(dpkg --print-architecture 2>/dev/null || echo unknown)

# Packages every machine needs. perf and headers are chosen below because their names differ
# between Debian and Ubuntu.
packages=(python3-bpfcc bpfcc-tools python3-venv tmux strace gcc make linux-libc-dev)
[ "$arch" = amd64 ] && packages+=(gcc-multilib)

installed() { dpkg-query -W -f='${Status}\n' "$@" 2>/dev/null | grep -c '^install ok installed$' || true; }

missing=()
for p in "${packages[@]}"; do
  [ "$(installed "$p")" = 1 ] || missing+=("$p")
done

have_headers() {
  [ -e "/lib/modules/$kernel/build" ] || [ -e /sys/kernel/kheaders.tar.xz ] && return 0
  dpkg-query -W -f='${Package} ${Status}\n' 'linux-headers-*' 2>/dev/null \
    | grep -q ' install ok installed$'
}
have_perf() { command -v perf >/dev/null 2>&1; }

need_headers=0; need_perf=0
have_headers || need_headers=1
have_perf || need_perf=1

if [ ${#missing[@]} -gt 0 ] || [ $need_headers = 1 ] || [ $need_perf = 1 ]; then
  if ! command -v apt-get >/dev/null; then
    say "no apt-get here: install bcc (python3 bindings), kernel headers, tmux, strace, perf and gcc by hand"
    exit 1
  fi
  sudo_cmd=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then
      sudo_cmd=(sudo)
    else
      say "not root and no sudo: as root run: apt-get update && apt-get install -y ${missing[*]} linux-headers-$arch linux-perf"
      exit 1
    fi
  fi
  say "apt-get update"
  "${sudo_cmd[@]}" apt-get update -q >/dev/null
  pick() { # first package of the arguments that the distribution has
    for c in "$@"; do
      apt-cache show "$c" >/dev/null 2>&1 && { echo "$c"; return 0; }
    done
    return 1
  }
  if [ $need_headers = 1 ]; then
    # The running kernel's own headers when the distribution has them, else its generic ones
    # (sikte-tui then builds a merged fallback tree for bcc; see tracing/kheaders.py).
    if h=$(pick "linux-headers-$kernel" "linux-headers-$arch" linux-headers-generic); then
      missing+=("$h")
    else
      say "warning: no kernel header package found for $kernel; bcc may not compile"
    fi
  fi
  if [ $need_perf = 1 ]; then
    p=$(pick linux-perf linux-tools-common) && missing+=("$p")
    [ "${p:-}" = linux-tools-common ] && p2=$(pick "linux-tools-$kernel" linux-tools-generic) \
      && missing+=("$p2")
  fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q "${missing[@]}" >/dev/null
fi

# bcc comes from the distribution; the venv must see it, so it is made from the system Python.
if [ ! -x .venv/bin/python ]; then
  say "creating .venv from /usr/bin/python3 with --system-site-packages"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi

stamp=.venv/.sikte-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "pip install -e '.[test]'"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi

# The PyPI package named "bcc" is an unrelated project; if it shadows the real one, say so.
if ! .venv/bin/python -c 'import bcc, sys; sys.exit(0 if hasattr(bcc, "BPF") else 1)' 2>/dev/null; then
  say "the venv does not see bcc's BPF class: if 'pip show bcc' lists a package, run '.venv/bin/pip uninstall -y bcc' (the PyPI 'bcc' is not BPF's); else install python3-bpfcc"
  exit 1
fi
