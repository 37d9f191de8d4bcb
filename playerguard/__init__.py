"""playerguard: inhuman play, churn and purchase propensity from game telemetry, locally or on AWS.

The Python API: `import playerguard as pg`, then `pg.simulate()`, `pg.build_features("2026-03-01")`,
`pg.train()`, `pg.score()`, `pg.explain(player_id)`, `pg.flags()`... (see `playerguard.api`). Names load
on first use, so importing playerguard stays light and has no side effects (the Lambda handler imports the
package too).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = "playerguard.api"
# name → (module, attribute): the public API, each loaded when first used. No name may be a subpackage's
# (`features`...): importing the subpackage would replace it on the package.
_EXPORTS: dict[str, tuple[str, str]] = {
    **{
        name: (_API, name)
        for name in (
            "LocalEndpoint", "ban_list", "build_features", "build_training_set", "bundle", "champions", "check_source",
            "cutoffs", "drift", "explain", "feature_sql", "flags", "ground_truth", "ingest", "lake_info",
            "models", "open_lake", "promote", "replay", "results", "review_flag", "score", "serve",
            "simulate", "sql", "suggest_features", "suppressed_flags", "train", "training_set_as_of_run",
            "write_scores",
        )
    },
    "Settings": ("playerguard.settings", "Settings"),
    "PlayerguardError": ("playerguard.errors", "PlayerguardError"),
    "ConfigError": ("playerguard.errors", "ConfigError"),
    "DataError": ("playerguard.errors", "DataError"),
    "plot_distributions": ("playerguard.plots", "plot_distributions"),
    "plot_counts_over_time": ("playerguard.plots", "plot_counts_over_time"),
    "source_mapping": ("playerguard.features.sources", "load_source_mapping"),
    "source_sql": ("playerguard.features.sources", "mapped_select"),
    "load_cs2": ("playerguard.lake.cs2", "load_cs2cd"),
    "cs2_data_dir": ("playerguard.lake.cs2", "default_data_dir"),
    "CS2_MATCH_START": ("playerguard.lake.cs2", "MATCH_START"),
    "evaluate_cs2": ("playerguard.training.cs2_evaluation", "evaluate_cs2"),
    "CS2_DIRECTIONS": ("playerguard.training.cs2_evaluation", "CS2_DIRECTIONS"),
    "InhumanPlayModel": ("playerguard.training.inhuman_play", "InhumanPlayModel"),
}  # fmt: skip

__all__ = sorted(_EXPORTS)  # noqa: PLE0605 (the table above is the one list of public names)


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'playerguard' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
