"""A bounded in-process cache of what the database already knows (series ids, devices, last seqs).

Two generations: lookups hit the current one; a miss looks in the previous one (and moves the entry
back into the current one); a full current generation becomes the previous one and the oldest
generation is dropped whole. So at most `max_entries` entries are held, recently used entries stay,
and eviction costs nothing per entry. A miss is never wrong, only slower: the caller asks the
database (the one source of truth) and puts the answer back.
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TwoGenerationCache(Generic[K, V]):
    def __init__(self, max_entries: int) -> None:
        self._half = max(1, max_entries // 2)
        self.current: dict[K, V] = {}
        """The current generation: a hot path may read it directly (`.get`), then fall back to `get`."""
        self._old: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        value = self.current.get(key)
        if value is not None:
            return value
        value = self._old.pop(key, None)
        if value is not None:
            self.put(key, value)
        return value

    def __contains__(self, key: K) -> bool:
        return self.get(key) is not None

    def put(self, key: K, value: V) -> None:
        current = self.current
        if key not in current and len(current) >= self._half:
            self._old, self.current = current, {}
            current = self.current
        current[key] = value

    def clear(self) -> None:
        self.current = {}
        self._old = {}

    def __len__(self) -> int:
        return len(self.current) + len(self._old)
