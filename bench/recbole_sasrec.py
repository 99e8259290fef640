"""RecBole's SASRec (recbole==1.2.1) on a shop's log, same leave-one-out split, full ranking.

RecBole pins old packages, so it runs in its own virtual environment (see docs/recommend.md):

    python3 -m venv /tmp/recbole_venv
    /tmp/recbole_venv/bin/pip install torch==2.13.0
    /tmp/recbole_venv/bin/pip install --no-deps recbole==1.2.1
    /tmp/recbole_venv/bin/pip install numpy scipy pandas tqdm colorlog colorama tensorboard texttable psutil \
        tabulate thop pyyaml scikit-learn "numpy<2" "scipy<1.14" "pandas<2.2"
    /tmp/recbole_venv/bin/python bench/recbole_sasrec.py --store /tmp/srhome/games/store.sqlite --epochs 10

It reads the shop's SQLite store directly (no shoprank import), lets RecBole split each user's
time-ordered sequence leave-one-out (``LS: valid_and_test``, the protocol of
../shared/datasets/README.md), trains SASRec with its default full-softmax cross-entropy, and
writes every test user's 1-based rank of the held-out item (history items masked) and top 10
to ``bench/results/recbole_sasrec_ranks.json``; ``bench/rec_quality.py --recbole`` puts that
row in the shared table, computed with shoprank's metrics.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def export(store: Path, folder: Path) -> int:
    """The store's events as a RecBole atomic ``games.inter`` (user, item, time order)."""
    con = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    rows = con.execute("SELECT user_id, item_id, timestamp, seq FROM events ORDER BY timestamp, seq").fetchall()
    (folder / "games").mkdir(parents=True, exist_ok=True)
    with (folder / "games" / "games.inter").open("w") as out:
        out.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for order, (user, item, _, _) in enumerate(rows):
            out.write(f"{user}\t{item}\t{order}\n")  # arrival order as time: keeps each user's order exactly
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="the shop's store.sqlite")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2048, help="training batch (RecBole's default 2048)")
    parser.add_argument("--out", default=str(RESULTS / "recbole_sasrec_ranks.json"))
    parser.add_argument("--checkpoint", default=None,
                        help="skip training: rank with this RecBole checkpoint (.pth, e.g. of a run cut short)")
    args = parser.parse_args()

    import numpy as np
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    torch.set_num_threads(args.threads)
    # RecBole 1.2.1 reloads its own best checkpoint (a pickle it wrote a moment ago in our temp folder)
    # with torch.load, whose default became weights_only=True in torch 2.6.
    _load = torch.load
    torch.load = lambda *a, **k: _load(*a, **{**k, "weights_only": False})  # noqa: E731
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="recbole-"))
    n_events = export(Path(args.store), work)
    config = Config(model="SASRec", dataset="games", config_dict={
        "data_path": str(work), "checkpoint_dir": str(work / "saved"), "device": "cpu", "use_gpu": False,
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": 50, "train_neg_sample_args": None, "loss_type": "CE",
        "hidden_size": 64, "inner_size": 256, "n_layers": 2, "n_heads": 2,
        "hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5,
        "epochs": args.epochs, "train_batch_size": args.batch_size, "eval_batch_size": 2048, "learning_rate": 1e-3,
        "stopping_step": 3, "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full",
                                         "group_by": "user"},
        "metrics": ["NDCG", "Hit", "MRR"], "topk": [10], "valid_metric": "NDCG@10",
        "seed": 0, "reproducibility": True, "show_progress": False, "worker": 0,
    })
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = SASRec(config, train_data.dataset).to("cpu")
    trainer = Trainer(config, model)
    epochs_done = args.epochs
    if args.checkpoint:
        checkpoint = torch.load(args.checkpoint, map_location="cpu")
        model.load_state_dict(checkpoint["state_dict"])
        epochs_done = int(checkpoint.get("epoch", -1)) + 1
        reported = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    else:
        trainer.fit(train_data, valid_data, saved=True, show_progress=False)
        reported = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    train_seconds = time.perf_counter() - started

    # per-user ranks, computed the same way as shoprank's harness (history masked, full catalogue)
    users = dataset.field2id_token["user_id"]
    items = dataset.field2id_token["item_id"]
    out: dict[str, list] = {}
    model.eval()
    with torch.no_grad():
        for interaction, history_index, _, positive_i in test_data:
            scores = model.full_sort_predict(interaction).view(-1, dataset.item_num)
            scores[:, 0] = -np.inf
            if history_index is not None:
                scores[history_index] = -np.inf
            target = scores[torch.arange(len(scores)), positive_i]
            greater = (scores > target[:, None]).sum(1)
            equal = (scores == target[:, None]).sum(1)
            ranks = greater.double() + (equal.double() + 1) / 2  # the harness's "average" ties
            top = scores.topk(10, dim=1).indices
            for u, r, t, p in zip(interaction["user_id"].tolist(), ranks.tolist(), top.tolist(),
                                  positive_i.tolist(), strict=True):
                out[users[u]] = [r, [items[i] for i in t], items[p]]
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "model": f"RecBole SASRec 1.2.1 (CE, {epochs_done} epochs)", "epochs": epochs_done, "events": n_events,
        "checkpoint": args.checkpoint,
        "seconds": time.perf_counter() - started, "train_seconds": train_seconds,
        "recbole_reported_test": {k: float(v) for k, v in reported.items()}, "users": out,
    }))
    print(f"RecBole SASRec: {len(out)} test users, reported {dict(reported)}, "
          f"{time.perf_counter() - started:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
