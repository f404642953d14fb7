"""When two names look the same: a confusable skeleton after Unicode TS #39.

The data is Unicode's confusables.txt as shipped by the ``confusable_homoglyphs``
package (its ``confusables.json`` lists, for each character, the characters it can be
confused with, in both directions).  TS #39 maps every "source" character to one
"prototype"; the sources of a prototype and the prototype itself form a class, and
two strings are confusable when they map to the same sequence of classes.  We read
those classes from the package's pairs (single characters only: multi-character
prototypes such as ``rn`` for ``m`` are left out) and map each character to one
representative of its class.  Only equality of skeletons matters; the representative is
a lower-case ASCII letter where the class has one, else the lower case of its upper-case
ASCII letter (so that ``B`` and ``Β`` and ``b`` meet after case folding), else its
smallest code point.

Built on first use (about 10,000 characters), then every key is cached.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

BIDI_MARKS = "\u200e\u200f"  # the data wraps right-to-left characters in these


@functools.cache
def _class_of() -> dict[str, str]:
    data = json.loads(resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8"))
    parent: dict[str, str] = {}

    def find(ch: str) -> str:
        root = ch
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(ch, ch) != root:  # path compression
            parent[ch], ch = root, parent[ch]
        return root

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
            parent.setdefault(min(ra, rb), min(ra, rb))

    for char, homoglyphs in data.items():
        for entry in homoglyphs:
            other = entry["c"].strip(BIDI_MARKS)
            if len(char) == 1 and len(other) == 1:
                union(char, other)
    members: dict[str, list[str]] = {}
    for ch in parent:
        members.setdefault(find(ch), []).append(ch)
    return {ch: _representative(group) for group in members.values() for ch in group}


def _representative(group: list[str]) -> str:
    lower = [c for c in group if c.isascii() and c.islower()]
    upper = [c for c in group if c.isascii() and c.isupper()]
    return min(lower) if lower else min(upper).lower() if upper else min(group)


def skeleton(text: str) -> str:
    """``text`` with each character replaced by its confusable class's representative."""
    classes = _class_of()
    return "".join(classes.get(ch, ch) for ch in text)
