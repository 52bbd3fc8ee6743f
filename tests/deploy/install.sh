#!/usr/bin/env bash
# Installs what tests/deploy needs: a venv (.venv) with the packages of requirements.txt and
# the real Helm library helm-sdkpy (its metadata asks for Python 3.12, but its wheel works on
# 3.10+, so it is installed apart with --ignore-requires-python); checkov in a venv of its own
# (.venv/checkov); and promtool (Debian package prometheus) for the alert rule tests.
# Idempotent: a stamp holding the hash of this script and the requirements makes a second run
# a no-op. Env: PYTHON (default python3), FORCE=1 to reinstall.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
HELM_SDKPY=helm-sdkpy==0.1.32
say() { echo "[deploy/install] $*"; }

want=$(sha256sum install.sh requirements.txt requirements-checkov.txt | sha256sum | cut -c1-16)
if [ "${FORCE:-}" != 1 ] && [ -f .venv/.forge-stamp ] && [ "$(cat .venv/.forge-stamp)" = "$want" ]; then
    say "python venvs up to date"
else
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
    [ -x .venv/checkov/bin/python ] || "$PYTHON" -m venv .venv/checkov
    say "installing python packages"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --ignore-requires-python --no-deps "$HELM_SDKPY"
    .venv/checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
    echo "$want" > .venv/.forge-stamp
fi

if ! command -v promtool >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing promtool (Debian package prometheus)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    else
        say "promtool is missing and cannot be installed here (needs root and apt-get)"; exit 1
    fi
fi
command -v terraform >/dev/null || say "terraform is not installed: the terraform fmt check will be skipped"
say "ready: $(.venv/bin/python --version), $(promtool --version 2>&1 | head -1)"
