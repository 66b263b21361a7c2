"""One-line mutants of a module, each run against the tests that should notice it.

    python tools/mutation.py phase_settings/_core/decoding.py tests/reliability/test_decompression_bombs.py

Each mutant changes one operator or constant on one line (``<`` to ``<=``, ``and`` to ``or``,
``not`` dropped, a number moved by one, ``True`` to ``False``...), runs the given tests with
``-x`` and a timeout, and restores the file. Prints the survivors and the score. Lines that are
docstrings, comments or logging calls are left alone. Bounded: at most ``--max`` mutants.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

SWAPS = [
    (r" < ", " <= "),
    (r" <= ", " < "),
    (r" > ", " >= "),
    (r" >= ", " > "),
    (r" == ", " != "),
    (r" != ", " == "),
    (r" and ", " or "),
    (r" or ", " and "),
    (r"\bnot ", ""),
    (r"\bTrue\b", "False"),
    (r"\bFalse\b", "True"),
    (r" \+ 1\b", " + 2"),
    (r" - 1\b", " - 2"),
    (r"\breturn None\b", "return 0"),
    (r"\bcontinue\b", "break"),
]
SKIP = re.compile(r'^\s*(#|"""|\'\'\'|@|def |class |import |from |log|raise |assert )')


def mutants(text: str) -> list[tuple[int, str, str]]:
    found = []
    in_doc = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.count('"""') % 2 == 1:
            in_doc = not in_doc
            continue
        if in_doc or SKIP.match(line) or not stripped:
            continue
        code = line.split("  #")[0]
        for pattern, replacement in SWAPS:
            for match in re.finditer(pattern, code):
                mutated = code[: match.start()] + replacement + code[match.end() :]
                found.append((number, line, mutated + line[len(code) :]))
        for match in re.finditer(r"(?<![\w.])(\d+)(?![\w.])", code):
            value = int(match.group(1))
            mutated = code[: match.start()] + str(value + 1) + code[match.end() :]
            found.append((number, line, mutated + line[len(code) :]))
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("module", type=Path)
    parser.add_argument("tests", nargs="+")
    parser.add_argument("--max", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    original = args.module.read_text()
    lines = original.splitlines(keepends=True)
    killed, survived = 0, []
    todo = mutants(original)[: args.max]
    try:
        for number, before, after in todo:
            changed = list(lines)
            changed[number - 1] = after + ("\n" if before.endswith("\n") or True else "")
            args.module.write_text("".join(changed))
            try:
                done = subprocess.run(
                    [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", *args.tests],
                    capture_output=True,
                    timeout=args.timeout,
                )
                caught = done.returncode != 0
            except subprocess.TimeoutExpired:
                caught = True  # a hang is noticed too
            if caught:
                killed += 1
            else:
                survived.append(f"{args.module}:{number}: {before.strip()}  ->  {after.strip()}")
    finally:
        args.module.write_text(original)
    for line in survived:
        print("SURVIVED", line)
    total = len(todo)
    print(f"{args.module}: {killed} of {total} mutants killed ({100 * killed / max(total, 1):.0f} %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
