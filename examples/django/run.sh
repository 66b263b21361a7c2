#!/usr/bin/env bash
# The Django example in one command, from the repository root: `make example-django`
# (PORT=N for another port than 8000; PHASE_ENV=production for the production values).
#
# 1. serves a fake Phase on 127.0.0.1 seeded with examples/django/seed.json;
# 2. runs `manage.py phase_check`: where each setting comes from;
# 3. runs the site on http://127.0.0.1:$PORT/ until Ctrl-C, which also stops the fake.
set -eu
EXAMPLE=example-django
# shellcheck source=../_fake_phase.sh
. "$(dirname "${BASH_SOURCE[0]}")/../_fake_phase.sh"
PORT=${PORT:-8000}
SITE=$ROOT/examples/django

start_fake "$SITE/seed.json"
say "where each setting comes from: python examples/django/manage.py phase_check"
"$PYTHON" "$SITE/manage.py" phase_check || die "phase_check failed (exit status $?)"
say "the site: http://127.0.0.1:$PORT/ (Ctrl-C stops the site and the fake Phase)"
serve_until_stopped "$PYTHON" "$SITE/manage.py" runserver "127.0.0.1:$PORT" --noreload
