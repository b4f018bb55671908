"""PersistentMap.changed_since: the keys whose values a later version does not share with an
earlier one, found by comparing chunks by identity (the Files view recomputes only those)."""

from __future__ import annotations

import random

from tracing.model.persistent_map import CHUNK, PersistentMap


def test_the_changed_and_new_keys_in_order():
    first = PersistentMap({k: f"v{k}" for k in range(3 * CHUNK)})
    second = first.updated({5: "new", 2 * CHUNK + 1: "new", 3 * CHUNK: "added"})
    assert second.changed_since(first) == [5, 2 * CHUNK + 1, 3 * CHUNK]
    assert second.changed_since(second) == []
    assert first.changed_since(first) == []


def test_an_equal_value_that_is_another_object_counts_as_changed():
    first = PersistentMap({1: [1]})
    assert first.updated({1: [1]}).changed_since(first) == [1]


def test_none_when_the_versions_are_not_of_one_line():
    base = PersistentMap({1: "a", 2: "b"})
    left = base.updated({3: "left"})
    right = base.updated({4: "right"})  # a branch: its keys are its own
    assert right.changed_since(base) is None
    assert base.changed_since(left) is None  # the later one as `older`
    assert left.changed_since(PersistentMap({1: "a"})) is None
    assert left.changed_since(base) == [3]


def test_it_agrees_with_a_comparison_of_every_value():
    rng = random.Random(15)
    versions = [PersistentMap[int, object]()]
    for _ in range(60):
        changes = {rng.randrange(5 * CHUNK): object() for _ in range(rng.randrange(12))}
        versions.append(versions[-1].updated(changes))
    for _ in range(200):
        a, b = sorted(rng.sample(range(len(versions)), 2))
        older, newer = versions[a], versions[b]
        expected = [k for k, v in newer.items() if k not in older or older[k] is not v]
        assert newer.changed_since(older) == expected
