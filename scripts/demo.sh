#!/usr/bin/env bash
# One command on a fresh machine: install, then run the demo on the embedded SQLite database.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
exec .venv/bin/expo demo "$@"
