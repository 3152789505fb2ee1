#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a dev box:
#   install everything (idempotent) -> start the local broker and Redis -> swift build ->
#   swift test -> stop the services this script started -> exit with the tests' status.
# Extra arguments go to `swift test` (e.g. --filter KafkaClientTests).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FEEDRANK_ROOT"

"$FEEDRANK_ROOT/scripts/install.sh"

started_services=0
if ! grep -q '^kafka: up' <<<"$("$FEEDRANK_ROOT/scripts/services.sh" status)" || \
   ! grep -q '^redis: up' <<<"$("$FEEDRANK_ROOT/scripts/services.sh" status)"; then
  started_services=1
fi
cleanup() {
  if [ "$started_services" = 1 ]; then "$FEEDRANK_ROOT/scripts/services.sh" down || true; fi
}
trap cleanup EXIT
"$FEEDRANK_ROOT/scripts/services.sh" up

# OpenBLAS 0.3.21 (pthreads) is not safe to call from several threads at once while it runs
# its own thread pool, and swift test runs suites in parallel: one BLAS thread per caller, as
# every feedrank command sets (BLAS.threadCount = 1).
export OPENBLAS_NUM_THREADS=1
log "swift build"
swift build --build-tests
set +e
if [ $# -gt 0 ]; then
  log "swift test $*"
  swift test --skip-build "$@"
  status=$?
else
  # Unit tests in parallel; the integration suites one test at a time: each runs workers,
  # consumers and thousands of records against the one local broker, and on two cores
  # running them side by side starves them past their time bounds.
  log "swift test: unit tests"
  swift test --skip-build --skip IntegrationTests
  status=$?
  log "swift test: integration tests (broker + Redis, serial)"
  swift test --skip-build --filter IntegrationTests --no-parallel || status=1
fi
if [ $# -eq 0 ]; then
  log "Python tools' tests"
  "$VENV_DIR/bin/python" -m pytest -q tools/tests || status=1
  log "deployment validation (topics, Docker, compose, Helm)"
  "$FEEDRANK_ROOT/scripts/validate-deploy.sh" || status=1
fi
set -e
if [ $status -eq 0 ]; then log "all tests passed"; else log "tests FAILED (status $status)"; fi
exit $status
