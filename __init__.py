"""emoview: real-time facial emotion analysis.

The repository's folders install as one import name: `emoview.realtime` (the runtime library and,
in `emoview.realtime.commands`, the command front-ends), `emoview.train`, `emoview.export` and
`emoview.models`. Nothing else lands in site-packages, so a user's own `models.py` or `train.py`
can never shadow emoview's code.
"""
