# shellcheck shell=bash
# Sourced by examples/*/run.sh (EXAMPLE must be set first): starts the fake Phase of this
# repository on 127.0.0.1 in a temporary folder of its own, waits for it (bounded), exports its
# PHASE_* variables, and on exit (Ctrl-C included) stops everything it started and removes the
# folder. Two examples run at once share nothing.
#
# Knobs (environment): PYTHON (default: the Python of the repository's .venv, which `make`
# creates; it must have phase-settings installed with the dev extra, as `make` does),
# WAIT_SECONDS (how long the fake may take to start, default 30), PHASE_FAKE_PORT (default: a
# free port).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
PYTHON=$(command -v "$PYTHON" || printf '%s' "$PYTHON") # a bare name (python3) from PATH
WAIT_SECONDS=${WAIT_SECONDS:-30}
PIDS=()
WORK=

say() { printf '%s: %s\n' "$EXAMPLE" "$*"; }
die() {
	printf '%s: error: %s\n' "$EXAMPLE" "$*" >&2
	exit 1
}

cleanup() {
	local pid tries
	for pid in ${PIDS[@]+"${PIDS[@]}"}; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in ${PIDS[@]+"${PIDS[@]}"}; do
		tries=50 # 5 s, then SIGKILL
		while kill -0 "$pid" 2>/dev/null && [ "$tries" -gt 0 ]; do
			sleep 0.1
			tries=$((tries - 1))
		done
		kill -9 "$pid" 2>/dev/null || true
	done
	if [ -n "$WORK" ]; then
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ ! -x "$PYTHON" ]; then
	printf '%s: error: no Python at %s: run `make %s` from the repository root (it creates .venv and installs phase-settings there)\n' \
		"$EXAMPLE" "$PYTHON" "$EXAMPLE" >&2
	exit 2
fi
if ! "$PYTHON" -c 'import phase_settings' 2>/dev/null; then
	printf '%s: error: %s cannot import phase_settings: run `make %s` from the repository root\n' \
		"$EXAMPLE" "$PYTHON" "$EXAMPLE" >&2
	exit 2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/phase-$EXAMPLE.XXXXXX")

# start_fake SEED.json: serve the seed on 127.0.0.1 and export PHASE_HOST, PHASE_APP_ID and
# PHASE_SERVICE_TOKEN (every other PHASE_* variable but PHASE_ENV is unset, so that a real
# Phase configuration in the shell cannot leak in).
start_fake() {
	local env_file=$WORK/phase-fake.env log=$WORK/serve-fake.log fake tries name count
	: >"$env_file"
	"$PYTHON" -m phase_settings serve-fake --seed "$1" ${PHASE_FAKE_PORT:+--port "$PHASE_FAKE_PORT"} \
		>"$env_file" 2>"$log" &
	fake=$!
	PIDS+=("$fake")
	tries=$((WAIT_SECONDS * 10))
	while
		count=$(grep -c '^export ' "$env_file" || true)
		[ "${count:-0}" -lt 3 ]
	do
		if ! kill -0 "$fake" 2>/dev/null; then
			die "the fake Phase did not start: $(tr '\n' ' ' <"$log")"
		fi
		if [ "$tries" -le 0 ]; then
			die "the fake Phase did not start within ${WAIT_SECONDS}s (WAIT_SECONDS=N allows longer): $(tr '\n' ' ' <"$log")"
		fi
		tries=$((tries - 1))
		sleep 0.1
	done
	for name in $(compgen -e | grep '^PHASE_' || true); do
		if [ "$name" != PHASE_ENV ]; then
			unset "$name"
		fi
	done
	# shellcheck source=/dev/null
	. "$env_file"
	say "fake Phase serving on $PHASE_HOST (seeded from ${1#"$ROOT"/}); its PHASE_* variables are in $env_file"
}

# serve_until_stopped COMMAND...: run a web server until it exits or Ctrl-C; a server that
# exits by itself (port in use, bad settings) ends the example with its exit status.
serve_until_stopped() {
	local server status
	"$@" &
	server=$!
	PIDS+=("$server")
	status=0
	wait "$server" || status=$?
	die "the server stopped (exit status $status): see its messages above (PORT=N picks another port)"
}
