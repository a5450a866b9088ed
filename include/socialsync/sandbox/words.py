"""Vocabulary the generated dataset draws its names and texts from."""

from __future__ import annotations

ADJECTIVES = (
    "sunny", "urban", "wild", "quiet", "golden", "salty", "misty", "bold", "little", "nordic",
    "vivid", "lazy", "rapid", "cosmic", "velvet", "amber", "silver", "rustic", "neon", "gentle",
)
NOUNS = (
    "studio", "kitchen", "trail", "atelier", "garden", "bakery", "lens", "harbor", "market", "loft",
    "summit", "canvas", "cafe", "forge", "meadow", "voyage", "pixel", "bloom", "tide", "workshop",
)
WORDS = (
    "morning", "light", "new", "collection", "today", "weekend", "coffee", "launch", "behind", "scenes",
    "sunset", "team", "recipe", "handmade", "travel", "summer", "winter", "autumn", "spring", "city",
    "mountain", "sea", "friends", "design", "local", "fresh", "story", "details", "favorite", "moment",
    "drop", "limited", "edition", "studio", "process", "thank", "you", "everyone", "love", "this",
)
HASHTAGS = (
    "photography", "design", "foodie", "travel", "handmade", "instagood", "smallbusiness", "art",
    "nature", "fashion", "coffee", "fitness", "reels", "behindthescenes", "interior", "vintage",
)
LABELS = (
    "person", "food", "beverage", "landscape", "sky", "building", "plant", "animal", "vehicle",
    "text", "clothing", "furniture", "water", "mountain", "product", "logo", "night", "sport",
)
TOPICS = ("lifestyle", "food", "travel", "fashion", "technology", "art", "sport", "business", "nature")
POSITIVE = frozenset({"love", "favorite", "thank", "fresh", "golden", "sunny", "new", "friends"})
NEGATIVE = frozenset({"limited", "lazy", "misty", "winter"})
