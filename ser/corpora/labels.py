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
