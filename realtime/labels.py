"""Emotion names as datasets spell them, mapped to the names emoview uses (FER2013's).

One table for the runtime (`emoview eval` matches class folders with it) and for training (which
combines datasets), so the two can never disagree about what "anger" or "happiness" means.
"""

from __future__ import annotations

FER7 = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

SYNONYMS = {
    "anger": "angry", "angry": "angry", "mad": "angry",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy",
    "neutral": "neutral",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise",
    "contempt": "contempt", "calm": "calm",
}  # fmt: skip


def canonical(name: str) -> str | None:
    """emoview's name for a dataset's class name, or None if it is not an emotion we know."""
    return SYNONYMS.get(name.strip().lower())
