"""Model bundles: the champions, the feature definitions and the policy in one checksummed directory
(or `model.tar.gz` of it), which the scoring endpoint and the stream load.

Layout: `manifest.json`, `features.yaml`, `policy.yaml`, `models/<name>/...`. The manifest records a
sha256 per file and everything that decides a score or an action (thresholds, classes, versions, feature
set); `load_bundle` refuses a bundle whose files do not match it. The manifest itself is trusted only
against a digest kept outside the bundle directory: the sha256 of `manifest.json` (`bundle_digest`), given
to `load_bundle` as `expected_digest` (the `PLAYERGUARD_BUNDLE_DIGEST` setting), so that whoever can write
the bundle cannot rewrite a threshold and its checksum together.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from playerguard import __version__
from playerguard.errors import ConfigError, DataError
from playerguard.inference.policy import Policy, default_policy_path
from playerguard.settings import Settings
from playerguard.training.base import (
    ScoringModel,
    check_model_name,
    class_path_of,
    known_class_paths,
    load_model,
)

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
FEATURES_FILE = "features.yaml"
POLICY_FILE = "policy.yaml"
MODELS_DIR = "models"
MAX_UNPACKED_BYTES = 1 << 30  # a bundle of three models is tens of MB; refuse to unpack over 1 GiB
MAX_MEMBERS = 10_000
_PATH_KEYS = ("file", "booster_file")  # keys of saved model state that name a companion file
_STATE_FILE = "model.json"  # every model class saves its state under this name


@dataclass(frozen=True)
class ModelSource:
    """A saved model to put into a bundle, with its registry identity when it has one."""

    model: str
    directory: Path
    version: str | None = None
    registered_name: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class Bundle:
    """A loaded, verified bundle: models ready to score, the policy, and the manifest."""

    path: Path
    manifest: dict[str, Any]
    models: dict[str, ScoringModel]
    policy: Policy
    feature_set: Any = None

    @property
    def versions(self) -> dict[str, str]:
        return {name: entry["version"] for name, entry in self.manifest["models"].items()}

    @property
    def thresholds(self) -> dict[str, float | None]:
        return {name: entry["threshold"] for name, entry in self.manifest["models"].items()}

    @property
    def feature_set_name(self) -> str:
        return self.manifest["feature_set"]["name"]

    @property
    def feature_set_hash(self) -> str:
        return self.manifest["feature_set"]["hash"]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundle_digest(path: Path) -> str:
    """The digest that pins a bundle directory: sha256 of its manifest.json (which pins every other file)."""
    return sha256_file(Path(path) / MANIFEST_FILE)


def _check_digest(manifest_bytes: bytes, expected: str | None, shown_as: Path) -> None:
    if expected is None:
        return
    actual = hashlib.sha256(manifest_bytes).hexdigest()
    if not hmac.compare_digest(actual.encode(), expected.strip().lower().encode()):
        raise DataError(
            f"{shown_as}: bundle digest {actual[:16]}… is not the expected {expected.strip()[:16]}… "
            "(PLAYERGUARD_BUNDLE_DIGEST); refusing a bundle that was modified or is not the one deployed"
        )


def _file_hashes(directory: Path) -> dict[str, str]:
    return {
        path.relative_to(directory).as_posix(): sha256_file(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _resolve_feature_set(feature_set: Any) -> Any:
    """A FeatureSet (anything with name, hash and path) from a name, a path or a FeatureSet."""
    if all(hasattr(feature_set, attribute) for attribute in ("name", "hash", "path")):
        return feature_set
    from playerguard.features.api import load_feature_set

    return load_feature_set(feature_set)


def _check_policy(policy: Policy, thresholds: Mapping[str, float | None]) -> None:
    for model, threshold in thresholds.items():
        if threshold is None and policy.uses_model_threshold(model):
            raise ConfigError(
                f"{policy.source}: a {model} rule uses threshold 'model', but the bundled {model} model has none"
            )


def _prepare_directory(directory: Path) -> Path:
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise DataError(f"cannot write a bundle into {directory}: the directory is not empty")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def write_bundle(
    directory: Path, sources: Iterable[ModelSource], *, feature_set: Any, policy_path: Path | None = None
) -> Path:
    """Write a bundle of `sources` into `directory` (new or empty); returns the directory.

    Every model is loaded once to check it works and to read its threshold. A model without a registry
    version gets `unregistered-<sha256 prefix of its files>`, so its version still identifies its content.
    """
    sources = list(sources)
    if not sources:
        raise DataError("no models to bundle (train and register some first)")
    feature_set = _resolve_feature_set(feature_set)
    if feature_set.path is None:
        raise ConfigError(
            f"feature set {feature_set.name!r} was not loaded from a file; a bundle ships its file"
        )
    policy_source = Path(policy_path) if policy_path is not None else default_policy_path()
    policy = Policy.from_yaml(policy_source)
    thresholds: dict[str, float | None] = {}
    classes: dict[str, str] = {}
    for source in sources:
        name = check_model_name(source.model)
        if name in thresholds:
            raise DataError(f"the bundle lists the {name} model twice")
        model = load_model(name, source.directory)
        threshold = getattr(model, "threshold_", None)
        thresholds[name] = None if threshold is None else float(threshold)
        classes[name] = class_path_of(model)
    _check_policy(policy, thresholds)
    from playerguard.features.spec import load_feature_set

    shipped = load_feature_set(feature_set.path)  # the file that ships, whatever object named it
    policy.for_features(shipped.feature_names, shipped.name).check_features(
        shipped.feature_names, shipped.name, thresholds
    )

    directory = _prepare_directory(directory)
    entries: dict[str, dict[str, Any]] = {}
    for source in sources:
        target = directory / MODELS_DIR / source.model
        shutil.copytree(source.directory, target)
        files = _file_hashes(target)
        content = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
        entries[source.model] = {
            "registered_name": source.registered_name,
            "version": source.version or f"unregistered-{content[:12]}",
            "run_id": source.run_id,
            "class": classes[source.model],
            "threshold": thresholds[source.model],
            "files": files,
        }
    shutil.copyfile(feature_set.path, directory / FEATURES_FILE)
    shutil.copyfile(policy_source, directory / POLICY_FILE)
    manifest = {
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(),
        "playerguard_version": __version__,
        "feature_set": {"name": feature_set.name, "hash": feature_set.hash},
        "files": {name: sha256_file(directory / name) for name in (FEATURES_FILE, POLICY_FILE)},
        "models": entries,
    }
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    return directory


def build_bundle(
    settings: Settings, directory: Path, *, feature_set: Any = None, policy_path: Path | None = None
) -> Path:
    """Bundle the registry's current champions (models without one are left out) into `directory`, with
    the feature set they were trained on; a `feature_set` given must be that one."""
    from playerguard.training.tracking import download_champions

    with tempfile.TemporaryDirectory() as scratch:
        champions = download_champions(settings, Path(scratch))
        sources = [
            ModelSource(files.model, files.directory, files.version, files.registered_name, files.run_id)
            for files in champions.values()
        ]
        if not sources:
            raise DataError(f"no champion models in the registry at {settings.tracking_uri}; train first")
        model_dirs = {name: files.directory for name, files in champions.items()}
        trained_on = champions_feature_set(model_dirs, feature_set)
        return write_bundle(directory, sources, feature_set=trained_on, policy_path=policy_path)


def champions_feature_set(model_dirs: Mapping[str, Path], requested: Any = None) -> Any:
    """The one feature set the models in `model_dirs` were trained on (the file beside each model).

    A DataError when they were trained on different sets, or when `requested` is not theirs. Models
    registered before feature sets travelled with them take `requested`, else the packaged default.
    """
    from playerguard.features.spec import load_feature_set
    from playerguard.training.train import FEATURE_SET_FILE

    shipped = {
        name: load_feature_set(directory / FEATURE_SET_FILE)
        for name, directory in sorted(model_dirs.items())
        if (directory / FEATURE_SET_FILE).exists()
    }
    if len({fs.hash for fs in shipped.values()}) > 1:
        listed = ", ".join(f"{name} on {fs.name} ({fs.hash[:12]})" for name, fs in shipped.items())
        raise DataError(
            f"the champions were trained on different feature sets ({listed}); retrain them on one "
            "(playerguard train all --feature-set ...) or promote versions trained on the same set"
        )
    own = next(iter(shipped.values()), None)
    if requested is None:
        return own if own is not None else _resolve_feature_set("default")
    wanted = _resolve_feature_set(requested)
    wanted_hash = load_feature_set(wanted.path).hash if wanted.path is not None else wanted.hash
    if own is not None and wanted_hash != own.hash:
        raise DataError(
            f"feature set {wanted.name!r} is not the one the champions were trained on ({own.name!r}, "
            f"hash {own.hash[:12]}); leave --feature-set out to use theirs"
        )
    return wanted


def _verify(directory: Path, manifest: Mapping[str, Any]) -> None:
    expected = dict(manifest["files"])
    for name, entry in manifest["models"].items():
        check_model_name(name)
        expected.update({f"{MODELS_DIR}/{name}/{path}": digest for path, digest in entry["files"].items()})
    root = directory.resolve()
    for relative, digest in expected.items():
        parts = PurePosixPath(relative)
        if parts.is_absolute() or ".." in parts.parts:
            raise DataError(f"bundle {directory}: manifest lists a path outside the bundle: {relative!r}")
        path = directory / relative
        if not path.resolve().is_relative_to(root):
            raise DataError(f"bundle {directory}: {relative} links outside the bundle")
        if not path.is_file():
            raise DataError(f"bundle {directory} is missing {relative}, which its manifest lists")
        if sha256_file(path) != digest:
            raise DataError(
                f"bundle file {relative} does not match its manifest checksum (modified or corrupted)"
            )
    models_dir = directory / MODELS_DIR
    present = {p.relative_to(directory).as_posix() for p in models_dir.rglob("*") if p.is_file()}
    unexpected = sorted(present - set(expected))
    if unexpected:
        raise DataError(f"bundle {directory} has a file its manifest does not list: {unexpected[0]}")


def _referenced_paths(state: Any) -> Iterable[str]:
    """Values of the keys in saved model state that name companion files, at any depth."""
    if isinstance(state, dict):
        for key, value in state.items():
            if key in _PATH_KEYS and value is not None:
                yield value
            else:
                yield from _referenced_paths(value)
    elif isinstance(state, list):
        for item in state:
            yield from _referenced_paths(item)


def _check_model_paths(model_dir: Path, shown_as: Path) -> None:
    """Refuse saved model state that points at a file outside its own model directory."""
    root = model_dir.resolve()
    state_file = model_dir / _STATE_FILE
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError, RecursionError):
        return  # no readable state: the model's own loader says what is wrong with it
    for name in _referenced_paths(state):
        target = PurePosixPath(str(name))
        if (
            not isinstance(name, str)
            or target.is_absolute()
            or ".." in target.parts
            or not (model_dir / name).resolve().is_relative_to(root)
        ):
            raise DataError(
                f"{shown_as}: models/{model_dir.name}/{_STATE_FILE} names a file outside its model "
                f"directory: {str(name)[:100]!r}"
            )


def _load_model_checked(name: str, directory: Path, class_path: str, shown_as: Path) -> ScoringModel:
    _check_model_paths(directory, shown_as)
    try:
        return load_model(name, directory, path=class_path)
    except zipfile.BadZipFile:
        raise DataError(
            f"{shown_as}: a file of model {name} is not the archive its format needs (corrupted)"
        ) from None


def _load_directory(directory: Path, shown_as: Path, expected_digest: str | None = None) -> Bundle:
    try:
        manifest_bytes = (directory / MANIFEST_FILE).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{shown_as} is not a model bundle (no {MANIFEST_FILE})") from None
    _check_digest(manifest_bytes, expected_digest, shown_as)
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as error:
        raise DataError(f"{shown_as}: {MANIFEST_FILE} is not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        found = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise DataError(f"{shown_as}: unsupported bundle format {found!r}")
    _verify(directory, manifest)
    models: dict[str, ScoringModel] = {}
    for name, entry in manifest["models"].items():
        check_model_name(name)
        # Only a class registered for this model is ever imported, whatever the manifest says.
        if entry["class"] not in known_class_paths(name):
            raise DataError(
                f"{shown_as}: model {name} names class {entry['class']}, expected one of "
                f"{', '.join(known_class_paths(name))}"
            )
        models[name] = _load_model_checked(name, directory / MODELS_DIR / name, entry["class"], shown_as)
    policy = Policy.from_yaml(directory / POLICY_FILE)
    _check_policy(policy, {name: entry["threshold"] for name, entry in manifest["models"].items()})
    from playerguard.features.spec import load_feature_set

    feature_set = load_feature_set(directory / FEATURES_FILE)
    policy = policy.for_features(feature_set.feature_names, feature_set.name)
    policy.check_features(feature_set.feature_names, feature_set.name, models)
    return Bundle(path=shown_as, manifest=manifest, models=models, policy=policy, feature_set=feature_set)


def load_bundle(path: Path, expected_digest: str | None = None) -> Bundle:
    """Load and verify a bundle directory or `.tar.gz`; DataError on a missing or tampered file, or when
    `expected_digest` is given and the manifest's sha256 is not it."""
    path = Path(path)
    if path.is_dir():
        return _load_directory(path, path, expected_digest)
    if not path.is_file():
        raise DataError(f"no model bundle at {path}")
    with tempfile.TemporaryDirectory() as scratch:
        unpack_bundle(path, Path(scratch))
        # models are read into memory before scratch goes
        return _load_directory(Path(scratch), path, expected_digest)


def _normalized(member: tarfile.TarInfo) -> tarfile.TarInfo:
    # Owner and time say nothing about the bundle; leaving them out makes the same bundle pack to the same bytes.
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    member.mtime = 0
    return member


def pack_bundle(directory: Path, out_tar: Path) -> Path:
    """Pack a bundle directory into a gzip tarball (members at its root, as SageMaker expects)."""
    directory, out_tar = Path(directory), Path(out_tar)
    if not (directory / MANIFEST_FILE).is_file():
        raise DataError(f"{directory} is not a model bundle (no {MANIFEST_FILE})")
    if out_tar.resolve().is_relative_to(directory.resolve()):
        raise DataError(f"cannot write {out_tar} inside the bundle it packs")
    out_tar.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(out_tar, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.add(path, arcname=path.relative_to(directory).as_posix(), filter=_normalized)
    return out_tar


def _check_member(member: tarfile.TarInfo, tar: Path) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or "\\" in member.name:
        raise DataError(f"{tar}: refusing archive member {member.name!r} (absolute path or '..')")
    if not (member.isfile() or member.isdir()):
        raise DataError(f"{tar}: refusing archive member {member.name!r} (not a regular file or directory)")


def _checked_members(
    archive: tarfile.TarFile, tar: Path, max_bytes: int, max_members: int
) -> list[tarfile.TarInfo]:
    """The members, each checked, refusing the archive before extraction when it holds too many or would
    unpack to too many bytes (sizes are in the headers, so nothing is written first)."""
    members: list[tarfile.TarInfo] = []
    total = 0
    for member in archive:
        _check_member(member, tar)
        members.append(member)
        total += member.size
        if len(members) > max_members:
            raise DataError(f"{tar}: refusing an archive of over {max_members} members")
        if total > max_bytes:
            raise DataError(f"{tar}: refusing an archive that unpacks to over {max_bytes:,} bytes")
    return members


def unpack_bundle(
    tar: Path, directory: Path, *, max_bytes: int = MAX_UNPACKED_BYTES, max_members: int = MAX_MEMBERS
) -> Path:
    """Extract a bundle tarball into `directory`, refusing absolute paths, '..', links, and archives over
    `max_members` members or `max_bytes` unpacked."""
    tar, directory = Path(tar), Path(directory)
    try:
        with tarfile.open(tar, "r:*") as archive:
            members = _checked_members(archive, tar, max_bytes, max_members)
            directory.mkdir(parents=True, exist_ok=True)
            archive.extractall(directory, members=members, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise DataError(f"cannot unpack bundle archive {tar}: {error}") from None
    return directory
