"""Class names: every dataset spells emotions its own way; training speaks one vocabulary.

FER2013 folders say "angry", CK+ says "anger", RAVDESS numbers them, FER+ votes for "happiness".
`canonical` maps all of them onto the FER2013 names (plus "contempt" and "calm", which only some
datasets have), so a recipe can combine datasets and choose its label set by name. The table lives
in the runtime (`realtime.labels`), which `emoview eval` uses to match class folders the same way.
"""

from __future__ import annotations

from emoview.realtime.labels import FER7, SYNONYMS, canonical

__all__ = ["FER7", "SYNONYMS", "canonical"]
