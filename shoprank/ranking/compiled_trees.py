"""LightGBM's trees run by ONNX Runtime's tree-ensemble kernel: the same scores at about half the CPU a call.

A served request scores a few hundred candidates with a few hundred trees; LightGBM's own ``predict`` spends
~3 ms of one core on that (recommendations, Amazon Games: 279 trees over ~320 rows; 1.5 ms here, docs/benchmarks.md
"Serving on an Intel Xeon"). The tree-ensemble operator of
ONNX Runtime (``ai.onnx.ml`` TreeEnsembleRegressor) walks the same trees faster. The conversion is exact:
thresholds and leaf values stay doubles (the rows are passed as doubles, as LightGBM reads them), the comparison
is LightGBM's ``value <= threshold``, and a missing value takes LightGBM's branch (``default_left`` for a split
whose missing type is NaN; for missing type None, LightGBM reads NaN as 0 and so does the branch chosen here).
Models this cannot express (categorical splits, zero-as-missing) return None and keep LightGBM's ``predict``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger("shoprank.ranking")


class CompiledTrees:
    """``predict(x)``: the trees' summed scores (n,) as float32, one thread."""

    def __init__(self, model_bytes: bytes, n_features: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        self.n_features = n_features

    def predict(self, x: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(x, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {rows.shape}")
        return self.session.run(None, {"X": rows})[0].ravel().astype(np.float32)


class _Unsupported(ValueError):
    pass


def _flatten(dump: dict[str, Any]) -> dict[str, list[Any]]:
    """The node and leaf lists of TreeEnsembleRegressor from LightGBM's ``dump_model``."""
    nodes: dict[str, list[Any]] = {k: [] for k in ("tree", "node", "feature", "value", "mode", "true", "false",
                                                    "missing")}
    leaves: dict[str, list[Any]] = {"tree": [], "node": [], "weight": []}
    for tree, info in enumerate(dump["tree_info"]):
        counter = 0
        stack: list[tuple[dict[str, Any], int | None, str]] = [(info["tree_structure"], None, "")]
        while stack:  # depth first; each node's id is its visiting order, children patched into the parent
            node, parent, side = stack.pop()
            me, counter = counter, counter + 1
            if parent is not None:
                nodes[side][parent] = me
            idx = len(nodes["node"])
            for key, value in (("tree", tree), ("node", me), ("feature", 0), ("value", 0.0), ("mode", "LEAF"),
                               ("true", 0), ("false", 0), ("missing", 0)):
                nodes[key].append(value)
            if "split_feature" not in node:
                leaves["tree"].append(tree)
                leaves["node"].append(me)
                leaves["weight"].append(float(node["leaf_value"]))
                continue
            if node.get("decision_type") != "<=":
                raise _Unsupported(f"decision type {node.get('decision_type')!r}")
            missing, threshold = node.get("missing_type", "None"), float(node["threshold"])
            if missing not in ("None", "NaN"):
                raise _Unsupported(f"missing type {missing!r}")
            nodes["feature"][idx] = int(node["split_feature"])
            nodes["value"][idx] = threshold
            nodes["mode"][idx] = "BRANCH_LEQ"
            nodes["missing"][idx] = int(bool(node.get("default_left", True))) if missing == "NaN" \
                else int(0.0 <= threshold)
            stack.append((node["right_child"], idx, "false"))
            stack.append((node["left_child"], idx, "true"))
    return {**{f"n_{k}": v for k, v in nodes.items()}, **{f"l_{k}": v for k, v in leaves.items()}}


def onnx_model(booster: Any, num_iteration: int | None = None) -> tuple[bytes, int]:
    """The booster's first ``num_iteration`` trees (all: None or 0) as a serialised ONNX model, and its
    feature count. Raises ValueError for what TreeEnsembleRegressor cannot express exactly."""
    from onnx import TensorProto, helper

    dump = booster.dump_model(num_iteration=num_iteration or None)
    if dump.get("num_class", 1) != 1:
        raise _Unsupported("more than one output")
    n_features = int(dump["max_feature_idx"]) + 1
    flat = _flatten(dump)
    node = helper.make_node(
        "TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", n_targets=1,
        nodes_treeids=flat["n_tree"], nodes_nodeids=flat["n_node"], nodes_featureids=flat["n_feature"],
        nodes_values_as_tensor=helper.make_tensor("values", TensorProto.DOUBLE, [len(flat["n_value"])],
                                                  flat["n_value"]),
        nodes_modes=flat["n_mode"], nodes_truenodeids=flat["n_true"], nodes_falsenodeids=flat["n_false"],
        nodes_missing_value_tracks_true=flat["n_missing"],
        target_treeids=flat["l_tree"], target_nodeids=flat["l_node"], target_ids=[0] * len(flat["l_tree"]),
        target_weights_as_tensor=helper.make_tensor("weights", TensorProto.DOUBLE, [len(flat["l_weight"])],
                                                    flat["l_weight"]),
        post_transform="NONE", aggregate_function="SUM",
    )
    graph = helper.make_graph([node], "lightgbm", [helper.make_tensor_value_info("X", TensorProto.DOUBLE,
                                                                                 [None, n_features])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    return model.SerializeToString(), n_features


def compile_booster(booster: Any, num_iteration: int | None = None) -> CompiledTrees | None:
    """The booster's trees under ONNX Runtime, or None where they cannot be expressed exactly (or ONNX Runtime
    is missing): the caller keeps LightGBM's ``predict``."""
    try:
        model, n_features = onnx_model(booster, num_iteration)
        return CompiledTrees(model, n_features)
    except (_Unsupported, ImportError):
        return None
    except Exception as exc:  # an ONNX Runtime that refuses the graph: LightGBM still answers
        log.warning("LightGBM's trees stay with LightGBM (ONNX Runtime refused them: %s)", exc)
        return None
