"""Canonical emotion names shared by every corpus adapter."""

# The order fixes class indices: a corpus's classes keep this relative order.
CANONICAL = (
    "neutral",
    "calm",
    "happiness",
    "sadness",
    "anger",
    "fear",
    "disgust",
    "surprise",
    "boredom",
)


def ordered(labels) -> list[str]:
    """Sort label names by their canonical position, unknown names last (alphabetically).

    >>> ordered({"sadness", "anger", "neutral"})
    ['neutral', 'sadness', 'anger']
    """
    rank = {name: i for i, name in enumerate(CANONICAL)}
    return sorted(set(labels), key=lambda name: (rank.get(name, len(rank)), name))


# Spellings met in corpora and manifests -> canonical names.
ALIASES = {
    "neu": "neutral",
    "calm": "calm",
    "happy": "happiness",
    "hap": "happiness",
    "joy": "happiness",
    "sad": "sadness",
    "angry": "anger",
    "ang": "anger",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "fea": "fear",
    "disgusted": "disgust",
    "dis": "disgust",
    "surprised": "surprise",
    "sur": "surprise",
    "bored": "boredom",
}


def canonical(label: str) -> str:
    """Map a spelling to its canonical name; unknown names are returned lower-cased.

    >>> canonical("Angry"), canonical("bored"), canonical("afraid"), canonical("frustration")
    ('anger', 'boredom', 'fear', 'frustration')
    """
    name = str(label).strip().lower()
    return ALIASES.get(name, name)
