#!/usr/bin/env bash
# The Flask example in one command, from the repository root: `make example-flask`
# (PORT=N for another port than 5000; REFRESH_INTERVAL=N seconds, default 2;
# PHASE_ENV=production for the production values).
#
# 1. serves a fake Phase on 127.0.0.1 seeded with examples/flask/seed.json;
# 2. runs `flask phase check`: where each setting comes from;
# 3. runs the app on http://127.0.0.1:$PORT/ until Ctrl-C, which also stops the fake, and
#    prints the command that rotates a value in the fake from another shell.
set -eu
EXAMPLE=example-flask
# shellcheck source=../_fake_phase.sh
. "$(dirname "${BASH_SOURCE[0]}")/../_fake_phase.sh"
PORT=${PORT:-5000}
REFRESH_INTERVAL=${REFRESH_INTERVAL:-2}
export REFRESH_INTERVAL
FLASK=("$PYTHON" -m flask --app "$ROOT/examples/flask/app.py")

start_fake "$ROOT/examples/flask/seed.json"
say "where each setting comes from: flask --app examples/flask/app.py phase check"
"${FLASK[@]}" phase check || die "flask phase check failed (exit status $?)"
say "the app: http://127.0.0.1:$PORT/ (Ctrl-C stops the app and the fake Phase)"
say "rotate a value from another shell; the app serves it within ${REFRESH_INTERVAL}s:"
printf "  . %q && %q -m phase_settings set 'GREETING=Hello again'\n" "$WORK/phase-fake.env" "$PYTHON"
serve_until_stopped "${FLASK[@]}" run --host 127.0.0.1 --port "$PORT"
