#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo run for real: Prometheus,
# nginx (the default router), Lua (to test the Argo CD health check) and htpasswd.
# Sessions and CI run as root; a machine that already has them skips apt entirely.
set -euo pipefail
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v lua5.4 >/dev/null || missing+=(lua5.4)
# htpasswd hashes the basic-auth password of the TLS Prometheus test (bcrypt).
command -v htpasswd >/dev/null || missing+=(apache2-utils)
if [ ${#missing[@]} -gt 0 ]; then
  echo "[system-deps] installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts the packaged daemons on install; the tests run their own on free ports.
  pkill -x prometheus 2>/dev/null || true
fi
