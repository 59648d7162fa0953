#!/bin/bash
# Installs Python packages into the environment the notebook server and every kernel use.
# The environment is made afresh at each start, so this runs at every start.
set -e
PACKAGES=${PACKAGES:-"pandas"}
python -m pip install --quiet $PACKAGES
python -m pip list --format=freeze | grep -i -E "^($(echo $PACKAGES | tr ' ' '|' | sed 's|[^|]*/||g'))" || true
