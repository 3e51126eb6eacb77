"""Reads marl's dashboard files back with the field's own readers (scripts/setup-dashboards.sh
makes a virtualenv with them) and checks them against metrics.csv.

  python check-dashboards.py tensorboard RUN_DIR...   # event files == metrics.csv
  python check-dashboards.py marl-eval FILE.json      # marl-eval's checker, loader, matrices

Prints one line per check and exits non-zero on the first mismatch.
"""

import csv
import json
import sys
from pathlib import Path

import numpy as np

AXIS = {"update", "global_step"}


def check_tensorboard(run_dir: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import (
        SCALARS,
        EventAccumulator,
    )

    acc = EventAccumulator(str(run_dir), size_guidance={SCALARS: 0})
    acc.Reload()
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows, f"{run_dir}: metrics.csv has no rows"
    columns = [c for c in rows[0].keys() if c not in AXIS]
    tags = set(acc.Tags()["scalars"])
    count = 0
    for c in columns:
        want = [
            (int(float(r["global_step"])), np.float32(float(r[c])))
            for r in rows
            if r[c] != ""
        ]
        if not want:
            assert c not in tags, f"{run_dir}: `{c}` is empty in metrics.csv but has events"
            continue
        assert c in tags, f"{run_dir}: no scalar `{c}` (tags: {sorted(tags)})"
        got = [(e.step, np.float32(e.value)) for e in acc.Scalars(c)]
        assert got == want, f"{run_dir}: `{c}`\n  events  {got}\n  metrics {want}"
        count += len(got)
    extra = tags - set(columns)
    assert not extra, f"{run_dir}: scalars not in metrics.csv: {sorted(extra)}"
    print(f"OK {run_dir}: {len(tags)} scalars, {count} values, {len(rows)} steps equal metrics.csv")


def check_marl_eval(path: Path) -> None:
    from marl_eval.utils.data_processing_utils import (
        create_matrices_for_rliable,
        data_process_pipeline,
    )
    from marl_eval.utils.diagnose_data_errors import DiagnoseData

    raw = json.loads(path.read_text())
    checks = DiagnoseData(raw).check_data()
    for env, result in checks.items():
        bad = [k for k, ok in result.items() if not ok]
        assert not bad, f"{path}: DiagnoseData finds problems in {env}: {bad}"
    processed = data_process_pipeline(raw_data=raw, metrics_to_normalize=["return"])
    # The pipeline prints and returns its input unchanged when the format is wrong.
    assert "extra" in processed, f"{path}: data_process_pipeline rejected the file"
    for env in raw:
        final, curves = create_matrices_for_rliable(
            data_dictionary=processed,
            environment_name=env,
            metrics_to_normalize=["return"],
        )
        for metric, by_algo in final.items():
            for algo, matrix in by_algo.items():
                assert np.all(np.isfinite(matrix)), f"{path}: {metric} {algo} not finite"
        algos = sorted(next(iter(final.values())).keys())
        print(f"OK {path}: {env}: metrics {sorted(final)}, algorithms {algos}")


def main() -> None:
    what, paths = sys.argv[1], [Path(p) for p in sys.argv[2:]]
    for p in paths:
        if what == "tensorboard":
            check_tensorboard(p)
        elif what == "marl-eval":
            check_marl_eval(p)
        else:
            sys.exit(f"unknown check {what}")


if __name__ == "__main__":
    main()
