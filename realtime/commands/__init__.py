"""The front-ends: each `emoview` command wires the runtime library (one room up) to argv.

Nothing here is needed to analyse a frame; the CLI, the Python API and the web view all build on
the same library modules in `emoview.realtime`.
"""
