from __future__ import annotations

import json

import numpy as np
import pytest

from shoprank.bundles import BundleError, latest_version, list_versions, open_bundle, publish, set_latest


def save(root, value, kind="search"):
    with publish(root, kind, params={"value": value}) as folder:
        np.save(folder / "weights.npy", np.full(4, value, dtype=np.float32))
    return latest_version(root, kind)


def test_publish_then_open_gives_the_same_arrays(tmp_path):
    version = save(tmp_path, 3.0)
    bundle = open_bundle(tmp_path, "search")
    assert bundle.version == version and bundle.params == {"value": 3.0}
    assert np.load(bundle.path / "weights.npy").tolist() == [3.0] * 4


def test_latest_moves_only_after_a_complete_publish(tmp_path):
    first = save(tmp_path, 1.0)
    with pytest.raises(RuntimeError), publish(tmp_path, "search") as folder:
        np.save(folder / "weights.npy", np.zeros(4))
        raise RuntimeError("training crashed half-way")
    assert latest_version(tmp_path, "search") == first
    assert list_versions(tmp_path, "search") == [first]  # the staging folder was removed


@pytest.mark.parametrize("damage", ["truncate", "flip", "remove", "manifest", "format"])
def test_damaged_bundle_is_refused_and_latest_stays(tmp_path, damage):
    good = save(tmp_path, 1.0)
    bad = save(tmp_path, 2.0)
    path = tmp_path / "search" / bad
    weights = path / "weights.npy"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:10])
    elif damage == "flip":
        data = bytearray(weights.read_bytes())
        data[-1] ^= 0xFF
        weights.write_bytes(bytes(data))
    elif damage == "remove":
        weights.unlink()
    elif damage == "manifest":
        (path / "manifest.json").write_text("{not json")
    else:
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["format_version"] = 999
        (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError):
        open_bundle(tmp_path, "search", bad)
    with pytest.raises(BundleError):
        set_latest(tmp_path, "search", bad)
    set_latest(tmp_path, "search", good)
    assert open_bundle(tmp_path, "search").version == good


def test_no_bundle_says_how_to_make_one(tmp_path):
    with pytest.raises(BundleError, match="shoprank train recommend"):
        open_bundle(tmp_path, "recommend")


def _staging(root, kind="search"):
    return sorted(p.name for p in (root / kind).iterdir() if p.name.startswith(".staging-"))


def test_a_killed_publishers_staging_folder_is_removed_and_a_live_ones_is_kept(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from shoprank.bundles import remove_stale_staging

    first = save(tmp_path, 1.0)
    script = ("import sys, time\nfrom shoprank.bundles import publish\n"
              "with publish(sys.argv[1], 'search') as folder:\n"
              "    (folder / 'half.bin').write_bytes(b'x' * 1000)\n    print('writing', flush=True)\n"
              "    time.sleep(60)\n")
    writer = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        assert len(_staging(tmp_path)) == 1
        assert remove_stale_staging(tmp_path) == []  # a living publisher holds it: kept, however old
        assert len(_staging(tmp_path)) == 1
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert len(_staging(tmp_path)) == 1  # what kill -9 leaves behind
    (tmp_path / "search" / ".LATEST.12345").write_text("x")  # killed while switching LATEST, long ago
    os.utime(tmp_path / "search" / ".LATEST.12345", (time.time() - 3600, time.time() - 3600))
    (tmp_path / "search" / ".LATEST.12346").write_text("x")  # a live writer's, just now
    removed = remove_stale_staging(tmp_path)
    assert sorted(p.name for p in removed)[0] == ".LATEST.12345" and len(removed) == 2
    assert _staging(tmp_path) == [] and (tmp_path / "search" / ".LATEST.12346").exists()
    assert latest_version(tmp_path, "search") == first and list_versions(tmp_path, "search") == [first]


def test_publishing_removes_leftovers_but_not_a_concurrent_publishers_folder(tmp_path):
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / ".staging-dead").mkdir()  # a dead writer's: nobody holds its lock
    (tmp_path / "search" / ".staging-dead" / "part.bin").write_bytes(b"x")
    with publish(tmp_path, "search") as outer:
        (outer / "a.npy").write_bytes(b"a")
        assert _staging(tmp_path) == [outer.name]  # the dead one went when this publish began
        inner_version = save(tmp_path, 2.0)  # a second publisher in the meantime spares the first's folder
        assert outer.is_dir() and _staging(tmp_path) == [outer.name]
    assert _staging(tmp_path) == []
    assert len(list_versions(tmp_path, "search")) == 2 and inner_version in list_versions(tmp_path, "search")


def test_a_staging_folder_removed_before_it_is_locked_is_replaced(tmp_path, monkeypatch):
    import os
    import tempfile

    import shoprank.bundles as bundles

    real = tempfile.mkdtemp
    calls = []

    def raced(*args, **kwargs):  # a cleaner runs between the folder's creation and its lock
        path = real(*args, **kwargs)
        calls.append(path)
        if len(calls) == 1:
            assert [p.name for p in bundles.remove_stale_staging(tmp_path)] == [os.path.basename(path)]
        return path

    monkeypatch.setattr(bundles.tempfile, "mkdtemp", raced)
    version = save(tmp_path, 5.0)
    assert len(calls) == 2 and open_bundle(tmp_path, "search").version == version
    assert _staging(tmp_path) == []
