"""Where emoview talks to people: progress and messages on stderr, so stdout stays for data."""

from rich.console import Console

stderr = Console(stderr=True, highlight=False, soft_wrap=True)  # a message is one line, never re-wrapped
