"""Class names: every dataset spells emotions its own way; training speaks one vocabulary.

FER2013 folders say "angry", CK+ says "anger", RAVDESS numbers them, FER+ votes for "happiness".
`canonical` maps all of them onto the FER2013 names (plus "contempt" and "calm", which only some
datasets have), so a recipe can combine datasets and choose its label set by name.
"""

from __future__ import annotations

FER7 = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

SYNONYMS = {
    "anger": "angry",
    "angry": "angry",
    "mad": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "contempt": "contempt",
    "calm": "calm",
}


def canonical(name: str) -> str | None:
    """The training name of a dataset's class name, or None if it is not an emotion we know."""
    return SYNONYMS.get(name.strip().lower())
