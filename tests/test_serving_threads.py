"""The server's thread limits reach BLAS too: its idle workers would otherwise spin between engine calls."""

from __future__ import annotations

import numpy as np
import pytest

from shoprank.serving.registry import limit_threads


def test_limit_threads_caps_blas_pools() -> None:
    import sys

    threadpoolctl = pytest.importorskip("threadpoolctl")
    np.ones((4, 4)) @ np.ones((4, 4))  # numpy's BLAS is loaded
    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch is not None else None
    try:
        with threadpoolctl.threadpool_limits(limits=None):  # restores the pools' sizes afterwards
            limit_threads(1)
            blas = [pool for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
            assert blas and all(pool["num_threads"] == 1 for pool in blas)
    finally:
        if torch is not None and torch_threads is not None:
            torch.set_num_threads(torch_threads)


def test_settle_heap_hides_loaded_objects_from_the_collector() -> None:
    import gc

    from shoprank.serving.registry import settle_heap

    try:
        kept = [[n] for n in range(1000)]  # long-lived containers, as a loaded catalogue is
        settle_heap()
        assert gc.get_freeze_count() >= len(kept)
        settle_heap(refreeze=True)  # after a swap: everything seen once more, then frozen again
        assert gc.get_freeze_count() >= len(kept)
    finally:
        gc.unfreeze()
