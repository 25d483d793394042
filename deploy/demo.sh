#!/usr/bin/env bash
# The main job on a fresh machine: install, then run the demo on the embedded SQLite log.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/deploy/python-env.sh"
cd "$repo"
crm demo "$@"
