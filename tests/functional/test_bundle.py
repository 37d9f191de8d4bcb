"""Model bundles on disk: manifest and checksums, pack/unpack, safe extraction, tamper detection."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from playerguard.errors import ConfigError, DataError
from playerguard.inference.bundle import (
    ModelSource,
    bundle_digest,
    load_bundle,
    pack_bundle,
    sha256_file,
    unpack_bundle,
    write_bundle,
)
from playerguard.inference.scoring import score_frame
from playerguard.training.inhuman_play import InhumanPlayModel
from playerguard.training.propensity import ChurnModel, PurchaseModel

FAST = {"n_estimators": 20, "learning_rate": 0.3, "max_depth": 3, "early_stopping_rounds": 5, "n_jobs": 1}

from playerguard.features.spec import load_feature_set

DEFAULT_FEATURES = load_feature_set("default").path


@dataclass(frozen=True)
class FeatureSetFile:
    name: str
    hash: str
    path: Path


def _players(n: int, seed: int) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    rng = np.random.default_rng(seed)
    cheater = rng.random(n) < 0.15
    sessions = rng.poisson(3, n).astype(float)
    purchases = rng.poisson(0.5, n).astype(float)
    frame = pd.DataFrame(
        {
            "player_id": [f"p{seed}-{i}" for i in range(n)],
            "sessions_7d": sessions,
            "purchases_28d": purchases,
            "matches_28d": rng.poisson(12, n).astype(float),
            "accuracy_28d": np.clip(rng.beta(5, 10, n) + 0.3 * cheater, 0, 1),
            "reaction_ms_p50_28d": rng.normal(260, 30, n) - 100 * cheater,
        }
    )
    labels = {
        "churn": pd.Series((rng.random(n) < 1 / (1 + np.exp(sessions - 2))).astype(int)),
        "purchase": pd.Series((rng.random(n) < 1 / (1 + np.exp(2 - purchases))).astype(int)),
        "inhuman_play": pd.Series(cheater.astype(int)),
    }
    return frame, labels


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    (X, y), (X_val, y_val) = _players(800, 1), _players(400, 2)
    models = {
        "churn": ChurnModel(**FAST),
        "purchase": PurchaseModel(**FAST),
        "inhuman_play": InhumanPlayModel(n_estimators=10, cv_folds=2, n_jobs=1),
    }
    for name, model in models.items():
        model.fit(X, y[name], X_val=X_val, y_val=y_val[name]).save(root / name)
    return {name: root / name for name in models}


@pytest.fixture
def feature_set(tmp_path: Path) -> FeatureSetFile:
    path = tmp_path / "features.yaml"
    path.write_text(DEFAULT_FEATURES.read_text().replace("name: default", "name: test", 1))
    return FeatureSetFile("test", "a" * 64, path)


@pytest.fixture
def bundle_dir(saved_models: dict[str, Path], feature_set: FeatureSetFile, tmp_path: Path) -> Path:
    sources = [ModelSource(name, path) for name, path in saved_models.items()]
    return write_bundle(tmp_path / "bundle", sources, feature_set=feature_set)


def test_the_manifest_describes_every_file_with_its_checksum(bundle_dir: Path, saved_models: dict) -> None:
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["playerguard_version"]
    assert manifest["feature_set"] == {"name": "test", "hash": "a" * 64}
    assert set(manifest["models"]) == {"churn", "purchase", "inhuman_play"}
    churn = manifest["models"]["churn"]
    assert churn["class"] == "playerguard.training.propensity:ChurnModel"
    assert churn["version"].startswith("unregistered-") and churn["registered_name"] is None
    assert churn["threshold"] is None
    assert manifest["models"]["inhuman_play"]["threshold"] is not None
    for name, entry in manifest["models"].items():
        for relative, digest in entry["files"].items():
            assert sha256_file(bundle_dir / "models" / name / relative) == digest
            assert digest == sha256_file(saved_models[name] / relative)
    assert manifest["files"]["policy.yaml"] == sha256_file(bundle_dir / "policy.yaml")
    assert "\nname: test\n" in (bundle_dir / "features.yaml").read_text()


def test_pack_unpack_load_scores_like_the_original_models(
    bundle_dir: Path, saved_models: dict, tmp_path: Path
) -> None:
    archive = pack_bundle(bundle_dir, tmp_path / "out" / "model.tar.gz")
    with tarfile.open(archive) as opened:
        assert "manifest.json" in opened.getnames()  # members at the root, as SageMaker expects
    assert pack_bundle(bundle_dir, tmp_path / "again.tar.gz").read_bytes() == archive.read_bytes()
    unpacked = unpack_bundle(archive, tmp_path / "unpacked")
    rows, _ = _players(50, 3)
    from playerguard.training.base import load_model

    for bundle in (load_bundle(unpacked), load_bundle(archive)):
        assert bundle.path in (unpacked, archive)
        results = score_frame(bundle, rows)
        for name, directory in saved_models.items():
            expected = load_model(name, directory).predict_score(rows)
            np.testing.assert_array_equal([r["scores"][name] for r in results], expected)
        assert bundle.feature_set_hash == "a" * 64
        assert bundle.thresholds["inhuman_play"] == pytest.approx(
            load_model("inhuman_play", saved_models["inhuman_play"]).threshold_
        )


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (
            lambda d: (d / "models/churn/booster.json").write_text("{}"),
            "models/churn/booster.json does not match",
        ),
        (lambda d: (d / "policy.yaml").write_text("version: 1\nmodels: {}\n"), "policy.yaml does not match"),
        (lambda d: (d / "models/purchase/model.json").unlink(), "missing models/purchase/model.json"),
        (
            lambda d: (d / "models/churn/extra.json").write_text("{}"),
            "does not list: models/churn/extra.json",
        ),
        (lambda d: (d / "manifest.json").write_text("{"), "manifest.json is not valid JSON"),
        (lambda d: (d / "manifest.json").unlink(), "is not a model bundle"),
    ],
)
def test_a_tampered_bundle_is_refused(bundle_dir: Path, tamper: object, message: str) -> None:
    tamper(bundle_dir)
    with pytest.raises(DataError, match=message):
        load_bundle(bundle_dir)


def test_a_manifest_naming_another_class_is_refused(bundle_dir: Path) -> None:
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    manifest["models"]["churn"]["class"] = "os:system"
    (bundle_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="names class os:system"):
        load_bundle(bundle_dir)


def _archive(path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as archive:
        member.size = len(data) if member.isfile() else 0
        archive.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (tarfile.TarInfo("../escape.txt"), "absolute path or '..'"),
        (tarfile.TarInfo("models/../../escape.txt"), "absolute path or '..'"),
        (tarfile.TarInfo("/tmp/escape.txt"), "absolute path or '..'"),
    ],
)
def test_unpack_refuses_members_outside_the_directory(
    member: tarfile.TarInfo, message: str, tmp_path: Path
) -> None:
    archive = _archive(tmp_path / "evil.tar.gz", member)
    with pytest.raises(DataError, match=message):
        unpack_bundle(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_unpack_refuses_links(tmp_path: Path) -> None:
    link = tarfile.TarInfo("manifest.json")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(DataError, match="not a regular file"):
        unpack_bundle(_archive(tmp_path / "link.tar.gz", link), tmp_path / "out")
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(DataError, match="cannot unpack bundle archive"):
        unpack_bundle(tmp_path / "junk.tar.gz", tmp_path / "out")


def test_writing_a_bundle_checks_its_inputs(
    saved_models: dict, feature_set: FeatureSetFile, bundle_dir: Path, tmp_path: Path
) -> None:
    churn = ModelSource("churn", saved_models["churn"], version="4", registered_name="playerguard-churn")
    with pytest.raises(DataError, match="not empty"):
        write_bundle(bundle_dir, [churn], feature_set=feature_set)
    with pytest.raises(DataError, match="twice"):
        write_bundle(tmp_path / "b1", [churn, churn], feature_set=feature_set)
    with pytest.raises(DataError, match="no models to bundle"):
        write_bundle(tmp_path / "b2", [], feature_set=feature_set)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "models:\n  churn:\n    rules:\n      - {threshold: model, action: retention_offer, severity: low}\n"
    )
    with pytest.raises(ConfigError, match="bundled churn model has none"):
        write_bundle(tmp_path / "b3", [churn], feature_set=feature_set, policy_path=policy)
    written = write_bundle(tmp_path / "b4", [churn], feature_set=feature_set)
    assert load_bundle(written).versions == {"churn": "4"}
    with pytest.raises(DataError, match="no model bundle at"):
        load_bundle(tmp_path / "nowhere.tar.gz")
    with pytest.raises(DataError, match="cannot write .* inside the bundle"):
        pack_bundle(written, written / "model.tar.gz")


# ---- hardening: a digest kept outside the bundle, paths, archive size, corrupt files -----------------------


def _rewrite_manifest(directory: Path, change: object) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    change(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))


def _ban_everyone(manifest: dict) -> None:
    manifest["models"]["inhuman_play"]["threshold"] = 0.0
    for entry in manifest["models"].values():
        entry["version"] = "999"


def test_a_pinned_digest_refuses_a_consistently_rewritten_manifest(bundle_dir: Path, tmp_path: Path) -> None:
    pinned = bundle_digest(bundle_dir)
    assert pinned == sha256_file(bundle_dir / "manifest.json")
    assert load_bundle(bundle_dir, pinned).versions["churn"].startswith("unregistered-")
    archive = pack_bundle(bundle_dir, tmp_path / "model.tar.gz")
    _rewrite_manifest(bundle_dir, _ban_everyone)
    with pytest.raises(DataError, match="is not the expected"):
        load_bundle(bundle_dir, pinned)
    assert load_bundle(archive, pinned).thresholds["inhuman_play"] > 0  # the untouched archive still loads
    tampered = pack_bundle(bundle_dir, tmp_path / "tampered.tar.gz")
    with pytest.raises(DataError, match="PLAYERGUARD_BUNDLE_DIGEST"):
        load_bundle(tampered, pinned)


def _set_state_path(directory: Path, key: str, value: str) -> None:
    state_file = directory / "models/inhuman_play/model.json"
    state = json.loads(state_file.read_text())
    state[key] = value
    state_file.write_text(json.dumps(state))
    _rewrite_manifest(
        directory, lambda m: m["models"]["inhuman_play"]["files"].update({"model.json": sha256_file(state_file)})
    )


@pytest.mark.parametrize("target", ["../../../../etc/passwd", "/etc/passwd", "../churn/booster.json"])
def test_a_model_file_path_outside_its_directory_is_refused(bundle_dir: Path, target: str) -> None:
    _set_state_path(bundle_dir, "booster_file", target)
    with pytest.raises(DataError, match="outside its model directory"):
        load_bundle(bundle_dir)


def test_a_bundle_file_linking_outside_the_bundle_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    inside = bundle_dir / "models/churn/booster.json"
    outside = tmp_path / "elsewhere.json"
    outside.write_bytes(inside.read_bytes())
    inside.unlink()
    inside.symlink_to(outside)
    with pytest.raises(DataError, match="links outside the bundle"):
        load_bundle(bundle_dir)


def test_unpack_checks_total_size_and_member_count_before_extracting(tmp_path: Path) -> None:
    big = _archive(tmp_path / "big.tar.gz", tarfile.TarInfo("manifest.json"), b"0" * 5000)
    with pytest.raises(DataError, match="unpacks to over 4,096 bytes"):
        unpack_bundle(big, tmp_path / "out", max_bytes=4096)
    many = tmp_path / "many.tar.gz"
    with tarfile.open(many, "w:gz") as archive:
        for i in range(30):
            member = tarfile.TarInfo(f"f{i}")
            member.size = 1
            archive.addfile(member, io.BytesIO(b"x"))
    with pytest.raises(DataError, match="over 20 members"):
        unpack_bundle(many, tmp_path / "out", max_members=20)
    assert not (tmp_path / "out").exists()  # refused before anything was written
    assert sorted(p.name for p in unpack_bundle(many, tmp_path / "ok").iterdir())[:2] == ["f0", "f1"]


# ---- a bad policy in a bundle is a one-line error on the command line --------------------------------------


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ("rank_by: score, spend_feature: spend_28d", "models.churn.rules[0].rank_by must be one of value_at_risk"),
        ("rank_by: value_at_risk", "models.churn.rules[0].spend_feature must name the feature"),
        ("where: gold_hoarded > 3", "models.churn.rules[0] reads gold_hoarded (where:): not features of the feature set"),
        ("daily_budget: -5", "models.churn.rules[0].daily_budget must be a whole number"),
    ],
)  # fmt: skip
def test_serving_a_bundle_with_a_bad_offer_rule_is_one_line_and_exit_2(
    bundle_dir: Path, tmp_path: Path, rule: str, fragment: str
) -> None:
    import subprocess
    import sys

    policy = bundle_dir / "policy.yaml"
    policy.write_text(
        "models:\n  churn:\n    rules:\n"
        f"      - {{threshold: 0.6, action: retention_offer, severity: low, {rule}}}\n"
    )
    _rewrite_manifest(bundle_dir, lambda m: m["files"].update({"policy.yaml": sha256_file(policy)}))
    outcome = subprocess.run(
        [sys.executable, "-m", "playerguard.cli", "serve", "--bundle", str(bundle_dir), "--port", "1"],
        check=False,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PLAYERGUARD_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)},
        timeout=300,
    )
    assert outcome.returncode == 2, outcome.stderr
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], outcome.stderr
    assert "Traceback" not in outcome.stderr + outcome.stdout
