"""The Lambda handler stays light: importing it loads none of the heavy libraries, and has no side effects."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pandas", "numpy", "xgboost", "sklearn", "mlflow", "sagemaker", "duckdb", "pyarrow", "boto3")


def test_importing_the_handler_loads_nothing_heavy(tmp_path) -> None:
    probe = (
        "import json, os, sys\n"
        "before = set(os.listdir('.'))\n"
        "import playerguard.stream.handler as h\n"
        "assert callable(h.handler)\n"
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "print(json.dumps({'heavy': heavy, 'created': sorted(set(os.listdir('.')) - before)}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"heavy": [], "created": []}
