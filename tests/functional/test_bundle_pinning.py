"""A served bundle pinned by a digest kept outside it: refused on load and on reload when it was rewritten.

An attacker who can write the bundle directory can rewrite the manifest and every checksum in it together;
the digest in PLAYERGUARD_BUNDLE_DIGEST (or the one a registry build recorded) is out of their reach.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from endpoint_fixtures import running_server, send, shared_test_bundle, synthetic_features

from playerguard.errors import DataError
from playerguard.inference.bundle import ModelSource, bundle_digest, sha256_file, write_bundle
from playerguard.inference.server import BundleHolder, BundleSource, create_app
from playerguard.settings import Settings
from playerguard.training.inhuman_play import InhumanPlayModel

PLAYERGUARD = [sys.executable, "-m", "playerguard.cli"]


def _rewrite_manifest(directory: Path, change: object) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    change(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))


def _ban_everyone(manifest: dict) -> None:
    manifest["models"]["inhuman_play"]["threshold"] = 0.0
    for entry in manifest["models"].values():
        entry["version"] = "999"


@pytest.fixture
def bundle(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return Path(shutil.copytree(shared_test_bundle(tmp_path_factory), tmp_path / "bundle"))


def test_reload_of_a_rewritten_bundle_is_refused_and_the_old_one_keeps_serving(
    bundle: Path, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home", bundle_digest=bundle_digest(bundle))
    holder = BundleHolder(BundleSource(settings, bundle).load)
    served = holder.reload()
    _rewrite_manifest(bundle, _ban_everyone)
    with pytest.raises(DataError, match="is not the expected"):
        holder.reload()
    assert holder.current is served and holder.current.bundle.versions["churn"] == "1"
    with running_server(create_app(holder)) as url:
        status, _, body = send(url, "POST", "/admin/reload")
        assert status == 500 and json.loads(body)["error"] == "reload_failed"
        assert "still serving the previous bundle" in json.loads(body)["message"]
        ping = json.loads(send(url, "GET", "/ping")[2])
        assert (
            ping["model_versions"]["churn"] == "1"
            and "PLAYERGUARD_BUNDLE_DIGEST" in ping["last_reload_error"]
        )


def _serve(bundle: Path, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return subprocess.run(
        [*PLAYERGUARD, "serve", "--bundle", str(bundle), "--port", str(port)],
        check=False,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PLAYERGUARD_HOME": str(home), "HOME": str(home), **env},
        timeout=300,
    )


def test_serve_refuses_a_bundle_that_is_not_the_pinned_one(bundle: Path, tmp_path: Path) -> None:
    pinned = bundle_digest(bundle)
    _rewrite_manifest(bundle, _ban_everyone)
    result = _serve(bundle, tmp_path, PLAYERGUARD_BUNDLE_DIGEST=pinned)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "is not the expected" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_skops_file_that_is_not_a_zip_is_one_line_and_exit_2(tmp_path: Path) -> None:
    frame = synthetic_features(300, seed=5)
    labels = (frame["headshot_rate_28d"] > 0.5).astype("int8")
    model = InhumanPlayModel(detector="isolation_forest", n_estimators=10, cv_folds=2)
    model.fit(frame, labels).save(tmp_path / "model")
    directory = write_bundle(
        tmp_path / "bundle",
        [ModelSource("inhuman_play", tmp_path / "model", version="1")],
        feature_set="default",
    )
    skops = directory / "models/inhuman_play/isolation_forest.skops"
    skops.write_bytes(b"this is not a zip archive")
    _rewrite_manifest(
        directory,
        lambda m: m["models"]["inhuman_play"]["files"].update({"isolation_forest.skops": sha256_file(skops)}),
    )
    result = _serve(directory, tmp_path / "home")
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "inhuman_play" in result.stderr
    assert "BadZipFile" not in result.stderr and "Traceback" not in result.stderr
