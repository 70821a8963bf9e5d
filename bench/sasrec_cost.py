"""What one SASRec epoch costs with the full softmax and with sampled negatives; optionally its valid NDCG@20.

    python bench/sasrec_cost.py                                   # one epoch each: negatives 0, 256, 1024
    python bench/sasrec_cost.py --valid --negatives 1024          # early-stopped on the valid split

Data: ml-latest-small (``INTERESTS_DATA_DIR`` or ``../shared/data``), the whole log for the epoch
cost, the leave-last-out valid split (``TemporalSplit``) for ``--valid``. Prints CPU and wall seconds.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from interests.ingest import read_logs
    from interests.recsys.data import from_user_histories
    from interests.recsys.sasrec import SASRec
    from interests.recsys.split import TemporalSplit

    ap = argparse.ArgumentParser()
    ap.add_argument("--negatives", default="0,256,1024", help="comma-separated; 0 is the full softmax")
    ap.add_argument("--valid", action="store_true", help="train early-stopped on valid instead of one epoch")
    args = ap.parse_args()
    d = Path(os.environ.get("INTERESTS_DATA_DIR") or ROOT.parent / "shared" / "data") / "ml-latest-small"
    logs = read_logs(d / "ratings.csv", mapping="user=userId,item=movieId,time=timestamp,rating=rating")
    data = from_user_histories(logs.histories)
    print(f"{data.n_users} users, {data.n_items} items", flush=True)
    for neg in (int(x) for x in args.negatives.split(",")):
        c, w = time.process_time(), time.perf_counter()
        if args.valid:
            v = TemporalSplit.of(data).case("valid")
            tl = SASRec(negatives=neg, seed=0).fit(v.fit, valid=(v.query, v.targets)).train_log
            what = f"valid NDCG@20 {tl.best_valid:.4f} at epoch {tl.best_epoch} of {tl.epochs}"
        else:
            SASRec(negatives=neg, seed=0).fit(data, epochs=1)
            what = "one epoch"
        cpu, wall = time.process_time() - c, time.perf_counter() - w
        print(f"negatives={neg}: {what}, {cpu:.1f}s CPU, {wall:.1f}s wall", flush=True)


if __name__ == "__main__":
    main()
