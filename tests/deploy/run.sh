#!/usr/bin/env bash
# The deployment tests (Helm chart, Terraform, dashboard, alert rules, Dockerfile): installs
# their tools (install.sh), then runs the pytest suite. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
./install.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@" .
