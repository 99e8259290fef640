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
