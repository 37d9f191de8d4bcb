"""Every PLAYERGUARD_* variable the package reads is one the command line knows: a new one cannot be
mistaken for a typo and refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from playerguard.cli import _known_variables, check_environment
from playerguard.errors import ConfigError

PACKAGE = Path(__file__).resolve().parents[2] / "playerguard"


def test_every_variable_the_package_names_is_known() -> None:
    named = {
        match
        for path in PACKAGE.rglob("*.py")
        for match in re.findall(r"PLAYERGUARD_[A-Z0-9_]*[A-Z0-9]", path.read_text())
    }
    named = {name for name in named if not name.endswith(("_STREAM", "_SAGEMAKER"))}  # prefixes in prose
    assert sorted(named - _known_variables(sorted(named))) == []


def test_a_misspelt_variable_is_refused_with_the_nearest_name() -> None:
    with pytest.raises(ConfigError, match="PLAYERGUARD_HOMEE; did you mean PLAYERGUARD_HOME"):
        check_environment({"PLAYERGUARD_HOMEE": "/tmp"})
    check_environment({"PLAYERGUARD_HOME": "/tmp", "OTHER": "x"})
