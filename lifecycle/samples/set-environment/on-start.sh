#!/bin/bash
# Environment variables for the notebook server and every kernel it starts.
set -e
cat >> "$RUSTMAKER_INSTANCE_ENV" <<'ENV'
TEAM_BUCKET=s3://team-bucket/notebooks
RUSTMAKER_EXPERIMENT=team-experiments
ENV
echo "environment for kernels:"; cat "$RUSTMAKER_INSTANCE_ENV"
