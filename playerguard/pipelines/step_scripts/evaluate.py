"""SageMaker processing job: held-out metrics of the trained bundle (`evaluation.json`, read by the
quality gate) and the drift of features and scores at the latest cutoff (`drift.json`, `drift.png`)."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--horizon-days", type=int, default=14)
    parser.add_argument("--drift-threshold", type=float, default=0.2)
    parser.add_argument("--features", type=Path, default=Path("/opt/ml/processing/input/features"))
    parser.add_argument("--model", type=Path, default=Path("/opt/ml/processing/input/model"))
    parser.add_argument("--output", type=Path, default=Path("/opt/ml/processing/output/evaluation"))
    args = parser.parse_args(argv)

    from playerguard.inference.bundle import unpack_bundle
    from playerguard.pipelines.steps import PipelineParams, run_job_steps
    from playerguard.settings import Settings

    with tempfile.TemporaryDirectory() as scratch:
        bundle = unpack_bundle(args.model / "model.tar.gz", Path(scratch))
        params = PipelineParams(horizon_days=args.horizon_days, drift_threshold=args.drift_threshold)
        inputs = {"build_features": args.features, "train": bundle, "bundle": bundle}
        run_job_steps(["evaluate", "drift"], Settings(home=args.output), params, args.output, inputs)


if __name__ == "__main__":
    main()
