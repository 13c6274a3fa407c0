#!/usr/bin/env bash
# One command on a fresh machine: install what the tests need, lint, type-check, run the whole suite
# on SQLite and PostgreSQL. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-pcsc.sh
scripts/setup-venv.sh test,dev,load,pcsc
scripts/ensure-postgres.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
set +e
.venv/bin/pytest "$@"
status=$?
set -e
# pytest's "no tests collected" (5) must not pass for a green run.
exit $status
