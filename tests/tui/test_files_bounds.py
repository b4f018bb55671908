"""The Files view says how many names went past the path table's bound (they are counted
under "(other)", none lost): a flood of distinct paths from another user shows as that."""

from __future__ import annotations

import dataclasses
import errno
from types import MappingProxyType

from tracing.model.files import FileKey, FileStats
from tracing.model.paths import OTHER_ID, PathTable

from .test_files_view import WIDE, app_on, decoded, open_files, plain  # noqa: F401


async def test_names_past_the_path_bound_are_counted_in_the_title(decoded):  # noqa: F811
    paths = PathTable(max_paths=4)
    ids = [paths.add(b"/tmp/flood-%d" % i) for i in range(7)]
    assert ids[2:] == [OTHER_ID] * 5
    files = {FileKey(4242, ids[0]): FileStats(open_errors=((errno.ENOENT, 1),)),
             FileKey(4242, ids[1]): FileStats(open_errors=((errno.ENOENT, 1),)),
             FileKey(4242, OTHER_ID): FileStats(open_errors=((errno.ENOENT, 5),))}
    items = [dataclasses.replace(s, paths=paths, files=MappingProxyType(files))
             for s in decoded]
    async with app_on(items).run_test(size=WIDE) as pilot:
        screen = await open_files(pilot)
        assert plain(screen, "#files-title").startswith(
            "Files: 3 paths · 5 more names counted as (other) · sort ")
