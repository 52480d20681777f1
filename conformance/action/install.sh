#!/usr/bin/env bash
# The Action's install step: wsconform from the checked-out action itself (its own ref), into
# the Python that actions/setup-python put on PATH.
set -euo pipefail
: "${ACTION_PATH:?set it to the checkout of this action (github.action_path)}"
python -m pip install --disable-pip-version-check --quiet "$ACTION_PATH"
wsconform --version
