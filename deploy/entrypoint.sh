#!/bin/sh
# Entrypoint of the opsverify image (deploy/Containerfile) and of the in-cluster CronJob
# (deploy/kubernetes/cronjob.yaml): run the checks against one environment, write the reports, and
# optionally push the metrics to a Prometheus Pushgateway.
#
# Settings (environment variables):
#   OPSVERIFY_ENV_FILE     environment file to verify (the CronJob mounts it from a ConfigMap), or
#   OPSVERIFY_ENV          the name of an environment baked into the image (environments/NAME.yaml)
#   OPSVERIFY_MARKERS      pytest marker expression (default: smoke)
#   OPSVERIFY_REPORTS_DIR  where summary.json/.md, junit.xml and metrics.prom go (default: /reports)
#   PUSHGATEWAY_URL        when set, metrics.prom is POSTed to $PUSHGATEWAY_URL/metrics/job/opsverify/env/<env>
#                          (a POST replaces that group's metrics of the same names)
# Extra arguments go to pytest (`-k vault`, `-x`, ...).
#
# Exit code: pytest's (0 all passed, 1 a check failed or errored, 4 usage error, 5 nothing selected),
# so a failed run is a failed Job. A failed push is reported on stderr and does not change the exit
# code: alert on the pushed metrics going stale for that (OpsverifyResultsStale in deploy/alerts/).
# Never prints a secret: the checks redact them, and nothing here traces commands (no `set -x`).
set -u
reports=${OPSVERIFY_REPORTS_DIR:-/reports}
markers=${OPSVERIFY_MARKERS:-smoke}

if [ -n "${OPSVERIFY_ENV_FILE:-}" ]; then
  # --env-file=PATH with `=`: pytest would take a separate path argument for a test path
  select="--env-file=$OPSVERIFY_ENV_FILE"
  # the environment's name (the file's `name:`, else its stem, as opsverify reads it) labels the pushed group
  env_name=$(python -c 'import pathlib, sys, yaml
path = pathlib.Path(sys.argv[1])
data = yaml.safe_load(path.read_text())
print(data.get("name") if isinstance(data, dict) and data.get("name") else path.stem)' "$OPSVERIFY_ENV_FILE" 2>/dev/null) \
    || env_name=unknown
elif [ -n "${OPSVERIFY_ENV:-}" ]; then
  select="--env=$OPSVERIFY_ENV"
  env_name=$OPSVERIFY_ENV
else
  echo "opsverify: set OPSVERIFY_ENV_FILE (an environment file) or OPSVERIFY_ENV (environments/NAME.yaml)" >&2
  exit 4
fi

code=0
python -m pytest -p no:cacheprovider -m "$markers" "$select" --reports-dir "$reports" "$@" || code=$?
echo "opsverify: pytest exited $code; reports in $reports"

if [ -n "${PUSHGATEWAY_URL:-}" ]; then
  if [ -f "$reports/metrics.prom" ]; then
    if curl --fail --silent --show-error --max-time 15 --retry 2 \
      --data-binary "@$reports/metrics.prom" \
      "${PUSHGATEWAY_URL%/}/metrics/job/opsverify/env/$env_name"; then
      echo "opsverify: pushed $reports/metrics.prom (job=opsverify, env=$env_name)"
    else
      echo "opsverify: pushing $reports/metrics.prom to the Pushgateway failed" >&2
    fi
  else
    echo "opsverify: no $reports/metrics.prom to push (the run wrote no metrics)" >&2
  fi
fi
exit "$code"
