"""SageMaker processing job: the training set at several cutoffs, through Athena, as Parquet.

Settings come from PLAYERGUARD_* variables the pipeline sets on the job (backend aws, lake, Glue, Athena).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cutoff", default="", help="last cutoff (ISO date); empty: from the lake's dates")
    parser.add_argument("--horizon-days", type=int, default=14)
    parser.add_argument("--lookback-days", type=int, default=28)
    parser.add_argument("--feature-set", default="default")
    parser.add_argument("--output", type=Path, default=Path("/opt/ml/processing/output/features"))
    args = parser.parse_args(argv)

    from playerguard.features.cutoffs import resolve_cutoffs
    from playerguard.pipelines.steps import PipelineParams, run_job_steps
    from playerguard.settings import Settings

    settings = Settings()
    cutoffs = resolve_cutoffs(settings, cutoff=args.cutoff or None, horizon_days=args.horizon_days)
    params = PipelineParams(cutoffs, args.horizon_days, args.lookback_days, args.feature_set)
    run_job_steps(["build_features"], settings, params, args.output, {})


if __name__ == "__main__":
    main()
