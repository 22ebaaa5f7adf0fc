#!/usr/bin/env python3
"""Fails when a function in src/ outside tests is longer than 80 lines.

A function should read as one step; past 80 lines it does several, and each deserves a name.
The code is rustfmt-formatted, so a function ends at the first `}` at its own indentation.
Test code is left out: everything from a `#[cfg(test)]` line to the end of its file, and files
named tests.rs. Run from the repository root; prints each long function and exits 1.
`--self-test` first checks that a long function in a made-up file is found and a short one is
not.
"""
import re
import sys
from pathlib import Path

LIMIT = 80
FN = re.compile(r"^(\s*)(?:pub(?:\([\w:]+\))? )?(?:const )?(?:async )?(?:unsafe )?fn (\w+)")


def long_functions(text: str, limit: int = LIMIT):
    """(name, first line, length) of each function longer than `limit` lines."""
    lines = text.splitlines()
    end_of_code = next(
        (i for i, l in enumerate(lines) if l.strip() == "#[cfg(test)]"), len(lines)
    )
    found = []
    for i in range(end_of_code):
        m = FN.match(lines[i])
        if not m or lines[i].rstrip().endswith(";"):
            continue
        indent = m.group(1)
        close = re.compile(r"^" + re.escape(indent) + r"\}")
        j = i + 1
        while j < end_of_code and not close.match(lines[j]):
            j += 1
        length = j - i + 1
        if length > limit:
            found.append((m.group(2), i + 1, length))
    return found


def self_test():
    body = "\n".join(f"    let x{n} = {n};" for n in range(85))
    text = f"fn short() {{\n    1\n}}\n\npub fn long() {{\n{body}\n}}\n"
    assert long_functions(text) == [("long", 5, 87)], long_functions(text)
    assert long_functions("#[cfg(test)]\n" + text) == []


def main():
    if "--self-test" in sys.argv:
        self_test()
    failures = []
    for path in sorted(Path("src").rglob("*.rs")):
        if path.name == "tests.rs":
            continue
        for name, line, length in long_functions(path.read_text()):
            failures.append(f"{path}:{line}: fn {name} is {length} lines (at most {LIMIT})")
    for f in failures:
        print(f)
    if failures:
        print(f"{len(failures)} function(s) too long to read as one step: split them by what they do")
        sys.exit(1)


if __name__ == "__main__":
    main()
