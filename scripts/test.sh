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
if [ "$#" -gt 0 ]; then
    .venv/bin/pytest "$@"
    status=$?
else
    # Unit, integration and property tests on both cores (each worker has its own databases); the end-to-end
    # tests after them, one at a time, since they share one pcscd and its vpcd reader slots.
    .venv/bin/pytest -n 2 --ignore=tests/e2e
    status=$?
    .venv/bin/pytest tests/e2e
    e2e=$?
    [ "$status" -eq 0 ] && status=$e2e
fi
set -e
# pytest's "no tests collected" (5) must not pass for a green run.
exit $status
