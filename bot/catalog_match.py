"""Which service-catalog item a message asks for: "I need Figma" is a request for the
Figma licence item, "Figma keeps crashing" is not.

A message asks for an item when it names the item (every word of the item's key, e.g.
`vpn-access` → "vpn" and "access"), reads as a wish (the intent is a software or access
request, or it says "I need", "can I get", "request" …), and does not describe something
broken, which is a ticket for an agent however the sentence starts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tickets.catalog import CatalogItemView

REQUEST_INTENTS = frozenset({"software_request", "access_request"})

_WISH = re.compile(
    r"\b((i|we)('d| would)? (need|want|like)|need an?|can (i|we) (get|have)|"
    r"could (i|we) (get|have)|request(ing)?|order|give me|get me|set me up)\b",
    re.IGNORECASE,
)
_SOMETHING_BROKEN = re.compile(
    r"\b(not working|isn'?t working|stopped|broken|broke|won'?t|can'?t|cannot|doesn'?t|"
    r"does not|crash\w*|error|fail\w*|keeps|cracked|damaged|dead|spilled|lost|stolen)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    words = set(_WORD.findall(text.lower()))
    return words | {word[:-1] for word in words if word.endswith("s") and len(word) > 3}


def catalog_item_asked_for(
    text: str, intent: str, items: Sequence[CatalogItemView]
) -> CatalogItemView | None:
    """The catalog item the message asks for, or None; the most specific item wins
    (the one whose key names the most words)."""
    if not reads_as_a_wish(text, intent):
        return None
    said = _words(text)
    named = [item for item in items if _key_words(item) and _key_words(item) <= said]
    if not named:
        return None
    return max(named, key=lambda item: len(_key_words(item)))


def reads_as_a_wish(text: str, intent: str) -> bool:
    """Cheap to ask before reading the catalog: could this message ask for an item?"""
    if _SOMETHING_BROKEN.search(text):
        return False
    return intent in REQUEST_INTENTS or bool(_WISH.search(text))


def _key_words(item: CatalogItemView) -> set[str]:
    return set(_WORD.findall(item.key.lower()))
