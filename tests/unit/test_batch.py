"""Batch scoring's pause of the cyclic garbage collector leaves the collector as it found it."""

from __future__ import annotations

import gc

import pytest

from playerguard.inference.batch import collector_paused


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_paused_while_scoring_and_left_as_it_was(enabled: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        with pytest.raises(RuntimeError), collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("scoring failed")
        assert gc.isenabled() == enabled
    finally:
        (gc.enable if was else gc.disable)()
