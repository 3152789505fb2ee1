#!/usr/bin/env bash
# Offline validation of the deployment artifacts (issue 8); exits non-zero on any failure.
#   1. topics/: topic declarations and record JSON Schemas against the shared samples
#      (tools/tests/test_schemas.py; the Swift half is Tests/RankingTests/RecordSamplesTests)
#   2. docker/Dockerfile: hadolint, and every COPY source exists in the build context
#   3. docker/compose.yaml: the Compose Specification JSON Schema (vendored) and the stack's
#      wiring (Prometheus targets, Grafana provisioning, the FeedRank dashboard's queries)
#   4. helm/feedrank: helm lint --strict and render (Helm's Go library, helm-python-sdk) for the
#      default values and every ci/*.yaml, each manifest strictly checked by kubernetes-validate
#      for Kubernetes 1.25 and 1.37; ci/invalid/*.yaml must be refused
#   5. the checkers themselves fail on broken artifacts (tools/tests/test_deploy_checks.py)
# Needs only PyPI (tools/requirements-deploy.txt, installed into the project venv); no Docker
# engine, cluster or network at validation time.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FEEDRANK_ROOT"

PY="$VENV_DIR/bin/python"
[ -x "$PY" ] || { log "creating Python venv at $VENV_DIR"; python3 -m venv "$VENV_DIR"; }
req="$FEEDRANK_ROOT/tools/requirements-deploy.txt"
stamp="$VENV_DIR/.feedrank-requirements-deploy"
if ! { [ -f "$stamp" ] && cmp -s "$req" "$stamp"; }; then
  log "installing deployment validators (tools/requirements-deploy.txt)"
  "$VENV_DIR/bin/pip" install -q -r "$req"
  cp "$req" "$stamp"
fi

failed=()
step() { # name, command...
  local name=$1; shift
  log "validate: $name"
  if "$@"; then log "validate: $name: ok"; else log "validate: $name: FAILED"; failed+=("$name"); fi
}

step "topics and record schemas" "$PY" -m pytest -q -p no:cacheprovider --noconftest tools/tests/test_schemas.py
step "hadolint docker/Dockerfile" "$VENV_DIR/bin/hadolint" --no-color --config docker/hadolint.yaml docker/Dockerfile
step "Dockerfile build context" "$PY" tools/deploy_checks.py dockerfile
step "compose.yaml and monitoring" "$PY" tools/deploy_checks.py compose
step "helm chart" "$PY" tools/deploy_checks.py helm
step "deployment checkers" "$PY" -m pytest -q -p no:cacheprovider --noconftest tools/tests/test_deploy_checks.py

if [ ${#failed[@]} -gt 0 ]; then
  log "deployment validation FAILED: ${failed[*]}"
  exit 1
fi
log "deployment validation passed"
