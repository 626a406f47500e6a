#!/usr/bin/env bash
# Creates .venv from uv.lock with every extra. uv itself is bootstrapped into the
# cache with pip, so a fresh machine needs nothing but python3 >= 3.11.
set -euo pipefail
cd "$(dirname "$0")/.."
uv_version=0.13.9
cache="${ROLLFORWARD_CACHE:-$HOME/.cache/rollforward}"
uv_home="$cache/uv-$uv_version"
if [ ! -x "$uv_home/bin/uv" ]; then
  python3 -m venv "$uv_home"
  "$uv_home/bin/pip" install --quiet "uv==$uv_version"
fi
export UV_PYTHON_DOWNLOADS=never
"$uv_home/bin/uv" sync --frozen --all-extras --python python3 --quiet --reinstall-package rollforward
