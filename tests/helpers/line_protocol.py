"""The line protocol of the tests' helper processes (tests/common's LineChild): one command per
line on stdin, one reply line on stdout, "ok [values]" or "err message"; "quit" ends it."""
import sys


def reply(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def serve(handle):
    """Answers each command with handle(words) until quit or end of input."""
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        try:
            reply(("ok " + handle(words)).rstrip())
        except Exception as e:  # reported to the test, which fails with the message
            reply(f"err {type(e).__name__}: {e}")
