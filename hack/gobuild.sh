#!/usr/bin/env bash
# Usage: hack/gobuild.sh <label> <go build flags and packages...>
#
# `go build -v` with readable progress for long builds: instead of one line
# per compiled package it prints a count every 100 packages (nothing at all
# when everything is cached); compiler errors and go command messages pass
# through unchanged, and the exit status is go build's.
set -euo pipefail
label=$1
shift
start=$SECONDS
${GO:-go} build -v "$@" 2>&1 | awk -v label="$label" '
	/^[^ \t:]+$/ { n++; if (n % 100 == 0) { printf "    %s: %d packages compiled...\n", label, n; fflush() } next }
	{ print; fflush() }
	END { if (n > 0) printf "    %s: %d packages compiled\n", label, n }'
echo "  ✓ $label ($((SECONDS - start))s)"
