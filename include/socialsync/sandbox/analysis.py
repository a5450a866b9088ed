"""What the sandbox's ML and image-recognition services answer: deterministic, so tests know it."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from socialsync.sandbox import words

_MENTION = re.compile(r"@([A-Za-z0-9_.]+)")
_HASHTAG = re.compile(r"#(\w+)")


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode()).digest()


def analyze_text(item_id: str, text: str) -> dict[str, Any]:
    """ML text analysis: language, sentiment, mentions, hashtags and topics of one text."""
    tokens = [t.lower() for t in re.findall(r"[A-Za-z]+", text)]
    score = sum(t in words.POSITIVE for t in tokens) - sum(t in words.NEGATIVE for t in tokens)
    sentiment = "positive" if score > 0 else "negative" if score < 0 else "neutral"
    digest = _digest("topics", text)
    topics = sorted({words.TOPICS[b % len(words.TOPICS)] for b in digest[:2]})
    return {
        "id": item_id,
        "language": "en",
        "sentiment": sentiment,
        "sentiment_score": round(max(-1.0, min(1.0, score / 3)), 3),
        "mentions": _MENTION.findall(text),
        "hashtags": _HASHTAG.findall(text),
        "topics": topics,
    }


def recognize_media(item_id: str, media_type: str, url: str) -> dict[str, Any]:
    """Image recognition: labels with confidences, faces and a safety flag for one photo or video."""
    digest = _digest("vision", item_id, url)
    labels = []
    seen: set[str] = set()
    for i in range(1 + digest[0] % 4):
        name = words.LABELS[digest[1 + i] % len(words.LABELS)]
        if name not in seen:
            seen.add(name)
            labels.append({"name": name, "confidence": round(0.5 + digest[8 + i] / 512, 3)})
    return {
        "id": item_id,
        "media_type": media_type,
        "labels": labels,
        "faces": digest[12] % 4,
        "safe": digest[13] % 20 != 0,
    }
