"""emoview: real-time facial emotion analysis.

    import emoview
    with emoview.EmotionAnalyzer() as analyzer:   # BGR frames in, faces with emotions out
        faces = analyzer(frame)
    timeline = emoview.analyze_video("talk.mp4")  # per-second emotions of a whole video
    faces = emoview.predict("photo.jpg")          # every face of a still

The API loads lazily: `import emoview` imports no MediaPipe, ONNX Runtime or OpenCV until a name
below is first used. The repository's folders install as one import name: `emoview.realtime` (the
runtime library and, in `emoview.realtime.commands`, the command front-ends), `emoview.train`,
`emoview.export` and `emoview.models`. Nothing else lands in site-packages, so a user's own
`models.py` or `train.py` can never shadow emoview's code.
"""

__all__ = ["EmotionAnalyzer", "FaceEmotion", "Timeline", "analyze_video", "predict"]


def __getattr__(name: str):
    if name in __all__:
        from emoview.realtime import api

        return getattr(api, name)
    raise AttributeError(f"module 'emoview' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
