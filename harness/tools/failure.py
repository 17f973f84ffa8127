"""How a command says that it cannot go on: one line on stderr that names
the fix (say), the exception that carries it to the command's documented
exit status (Fail), and the end of a tool's output to quote in it (tail).
Standard library only: every command uses these, before pytest may be
installed."""

import sys


class Fail(Exception):
    """An expected failure: one message naming the fix, and an exit status."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def say(text, command=None):
    """'conformance: TEXT', or 'conformance COMMAND: TEXT' for a subcommand's own."""
    print(f"conformance{' ' + command if command else ''}: {text}", file=sys.stderr, flush=True)


def tail(text, lines):
    """The last `lines` lines of a tool's output: where its error is."""
    return "\n".join(text.rstrip().splitlines()[-lines:])
