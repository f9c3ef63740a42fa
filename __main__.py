"""`python -m emoview ...` is the `emoview` command."""

from emoview.realtime.commands.cli import main

code = main()
# CPython remembers a KeyboardInterrupt that ended an exec() of source text (dataclasses and
# namedtuples make their methods so, at import) even when it was caught, and at exit it then ends
# a `python -m` run by SIGINT instead of with this exit code. A Ctrl-C landing there while a
# module loads made `emoview: interrupted` exit as "killed by SIGINT", not 130. Each exec()
# of source text forgets the last one's interrupt, so one that succeeds clears it.
exec("")  # noqa: S102
raise SystemExit(code)
