"""`python -m emoview ...` is the `emoview` command."""

from emoview.realtime.commands.cli import main

raise SystemExit(main())
