"""The import's on-disk sets (``sipphones.provisioning.scratch``)."""

from __future__ import annotations

import os
import stat

from sipphones.provisioning.scratch import Scratch


def test_scratch_sets_live_on_disk_and_go_with_close():
    s = Scratch()
    path = s._dir  # the directory it made: private, then removed
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert s.first_time("a@x.test") and s.first_time("b@x.test") and not s.first_time("a@x.test")
    for owner in ("z@x.test", "a@x.test", "z@x.test"):
        s.add_owner(owner)
    assert s.owner_count() == 2 and list(s.owners()) == ["a@x.test", "z@x.test"]
    s.close()
    assert not os.path.exists(path)
