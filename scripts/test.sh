#!/usr/bin/env bash
# Quick start: set up everything the tests need (packages, PostgreSQL, Redis, SIP peers) and run
# the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
export SIPPHONES_FAIL_ON_SKIP=${SIPPHONES_FAIL_ON_SKIP:-1}
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
