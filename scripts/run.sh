#!/usr/bin/env bash
# Quick start: set up and run the service on SQLite with a demo account (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh base
exec .venv/bin/sipphones serve --demo --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" "$@"
