"""A model registry in a local folder.

    REGISTRY/
      versions/<id>/model/          the model folder, as added (never changed afterwards)
      versions/<id>/version.json    id, content hash, lineage, eval summary
      versions/<id>/report.json     the eval report, when one was given
      versions/<id>/exports/<id>/   exports of this version (each immutable)
      tags.json                     tag → version id (replaced atomically on every move)
      .lock                         held by every writer (file lock: concurrent adds are safe)

A version's id is the start of its content hash: weights, tokenizer and module configs, not
the model card or the settings record (which carry dates and timings). Adding the same content twice
returns the existing version. Everything is built in a temporary folder and renamed into place,
so a crash never leaves half a version.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from embedtune.errors import ConfigError, DataError
from embedtune.io import sha256_file, write_json
from embedtune.model_folder import SETTINGS_FILE, read_settings
from embedtune.models import folder_sha256
from embedtune.registry.records import (
    EvalSummary,
    ExportRecord,
    Lineage,
    VersionDiff,
    VersionRecord,
)

logger = logging.getLogger(__name__)

__all__ = ["ID_LENGTH", "Registry"]

ID_LENGTH = 12
# What identifies a model's behaviour: everything but the card and embedtune's run record.
NOT_CONTENT = ("README.md", SETTINGS_FILE)
EXPORT_RECORD = "export-record.json"
EXPORT_META = "export.json"  # written by the export stage (which the registry must not import)


def _lock(root: Path) -> Any:
    from filelock import FileLock

    root.mkdir(parents=True, exist_ok=True)
    return FileLock(str(root / ".lock"), timeout=600)


def _read(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _eval_summary(report: dict[str, Any]) -> EvalSummary:
    """nDCG@10 (or the first metric) of each system, and which split it was measured on."""
    systems = report.get("systems", {})
    return EvalSummary(
        split=report.get("data", {}).get("split"),
        queries=report.get("data", {}).get("evaluated_queries"),
        metrics={s: v.get("ndcg@10", next(iter(v.values()), None)) for s, v in systems.items()},
    )


class Registry:
    """Immutable, content-addressed model versions with lineage, their exports, and tags that
    move; all in one folder, every write under the registry's file lock.

    Args:
        root: The registry folder (created on the first write).

    Example:
        >>> from embedtune import Registry
        >>> registry = Registry("registry")
        >>> version = registry.add("runs/fin/model", report="runs/fin/eval/report.json")
        >>> registry.promote(version.id, "production")
        {'production': '3f9c0e1a2b4d'}
        >>> registry.show("production").eval.metrics
        {'bm25': 0.7012, 'base-maxp': 0.8058, 'tuned-maxp': 0.8471}
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # --- reading ---------------------------------------------------------------------------

    def tags(self) -> dict[str, str]:
        """Every tag and the id of the version it points at.

        Returns:
            Tag → version id (empty for a registry without tags).
        """
        path = self.root / "tags.json"
        return _read(path) if path.is_file() else {}

    def versions(self) -> list[VersionRecord]:
        """Every version, oldest first, with its tags, exports and model folder.

        Returns:
            One record per version, ordered by creation time (then id).

        Example:
            >>> [(v.id, v.name, v.tags) for v in Registry("registry").versions()]
            [('3f9c0e1a2b4d', 'fin-v1', ['production']), ('77ab01c9e2f3', 'fin-v2', [])]
        """
        folder = self.root / "versions"
        if not folder.is_dir():
            return []
        tags = self.tags()
        records = [self._record(p.name, tags) for p in folder.iterdir()]
        return sorted(records, key=lambda r: (r.created, r.id))

    def resolve(self, name: str) -> str:
        """The version id that ``name`` stands for.

        Args:
            name: A version id, a unique prefix of one, or a tag.

        Returns:
            The full version id.

        Raises:
            ConfigError: No version or tag matches, or the prefix matches several versions.

        Example:
            >>> Registry("registry").resolve("production")
            '3f9c0e1a2b4d'
        """
        tags = self.tags()
        if name in tags:
            return tags[name]
        ids = [r.id for r in self._stored_versions()]
        matches = [i for i in ids if i.startswith(name)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise ConfigError(
                f"no version or tag '{name}' in {self.root}: see `embedtune registry list`"
            )
        raise ConfigError(f"'{name}' matches several versions: {', '.join(matches)}")

    def show(self, name: str) -> VersionRecord:
        """A version's full record: lineage, dev and eval summaries, tags, exports, path.

        Args:
            name: A version id, a unique prefix of one, or a tag.

        Returns:
            The version's record.

        Raises:
            ConfigError: ``name`` matches no version (or several).

        Example:
            >>> version = Registry("registry").show("production")
            >>> version.lineage.base_model["name"], [e.id for e in version.exports]
            ('sentence-transformers/all-MiniLM-L6-v2', ['a1b2c3d4e5f6'])
        """
        return self._record(self.resolve(name), self.tags())

    def model_path(self, name: str) -> Path:
        """The model folder of the version ``name`` stands for (id, prefix or tag)."""
        return self.root / "versions" / self.resolve(name) / "model"

    # --- writing ---------------------------------------------------------------------------

    def add(
        self,
        model: str | os.PathLike[str],
        *,
        report: str | os.PathLike[str] | None = None,
        parent: str | None = None,
        name: str | None = None,
    ) -> VersionRecord:
        """Add a model folder as a version, or find the version that already holds its content.

        Args:
            model: A sentence-transformers model folder (one embedtune trained carries its
                lineage in its settings record).
            report: An eval ``report.json`` to keep with the version (summarised in ``eval``).
            parent: The version (id, prefix or tag) this one derives from.
            name: A readable name (default: the folder's name).

        Returns:
            The new version's record, or the existing one's when the content is already here.

        Raises:
            DataError: ``model`` is not a model folder, or its settings record is malformed.
            ConfigError: ``parent`` matches no version.

        Example:
            >>> Registry("registry").add("runs/fin/model", name="fin-v1").id
            '3f9c0e1a2b4d'
        """
        source = Path(model)
        if not (source / "modules.json").is_file():
            raise DataError(
                "not a sentence-transformers model folder (no modules.json)", path=source
            )
        content = folder_sha256(str(source.resolve()), NOT_CONTENT)
        vid = content[:ID_LENGTH]
        with _lock(self.root):
            target = self.root / "versions" / vid
            if target.is_dir():
                logger.info("version %s already holds this content; nothing added", vid)
                return self.show(vid)
            parent_id = self.resolve(parent) if parent else None
            stored = read_settings(source)
            settings = {} if stored is None else stored.model_dump(mode="json")
            record = VersionRecord(
                id=vid,
                content_sha256=content,
                # the hash exports record as their source (all files but the card)
                model_sha256=folder_sha256(str(source.resolve())),
                name=name or source.resolve().name,
                created=_now(),
                lineage=Lineage(
                    base_model=settings.get("base_model"),
                    strategy=settings.get("strategy"),
                    data=settings.get("data"),
                    config=settings.get("config"),
                    seed=settings.get("seed"),
                    parent=parent_id,
                ),
                dev=settings.get("dev"),
                eval=None,
            )
            staging = self._staging()
            try:
                shutil.copytree(source, staging / "model", ignore=shutil.ignore_patterns(".*"))
                if report is not None:
                    loaded = _read(Path(report))
                    shutil.copyfile(report, staging / "report.json")
                    record.eval = _eval_summary(loaded)
                write_json(staging / "version.json", record.stored())
                _crash_point("version")
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        logger.info("added version %s (%s)", vid, record.name)
        return self.show(vid)

    def add_export(
        self, export: str | os.PathLike[str], version: str | None = None
    ) -> ExportRecord:
        """Add an export folder (from :func:`embedtune.export.export_model`) as an immutable
        child of its version.

        Args:
            export: The export folder (holding ``export.json``).
            version: The version it belongs to (id, prefix or tag); default: the version whose
                model hash is the export's source hash.

        Returns:
            The export's record (the same export added twice is one record).

        Raises:
            DataError: ``export`` is not an embedtune export.
            ConfigError: Its int8 model failed the parity check, or no version holds the
                model it was exported from.

        Example:
            >>> record = Registry("registry").add_export("runs/fin/export")
            >>> record.version, sorted(record.files)
            ('3f9c0e1a2b4d', ['fp32', 'int8', 'torch-export'])
        """
        folder = Path(export)
        meta_file = folder / EXPORT_META
        if not meta_file.is_file():
            raise DataError(f"not an embedtune export (no {EXPORT_META})", path=folder)
        meta = _read(meta_file)
        int8 = meta.get("parity", {}).get("int8", {})
        if int8.get("ok") is False:
            raise ConfigError(
                f"{folder}: its int8 model failed the parity check (nDCG@10 drop "
                f"{int8.get('ndcg_drop')}); re-export, or export without onnx-int8"
            )
        with _lock(self.root):
            vid = self.resolve(version) if version else self._version_of(meta)
            eid = sha256_file(meta_file)[:ID_LENGTH]
            target = self.root / "versions" / vid / "exports" / eid
            if not target.is_dir():
                staging = self._staging()
                try:
                    shutil.copytree(folder, staging / "files")
                    record = ExportRecord(
                        id=eid,
                        version=vid,
                        created=_now(),
                        files=meta.get("files", {}),
                        parity=meta.get("parity", {}),
                        path=str(target / "files"),
                    )
                    write_json(staging / EXPORT_RECORD, record.model_dump())
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staging, target)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
        return ExportRecord.model_validate(_read(target / EXPORT_RECORD))

    def promote(self, name: str, tag: str) -> dict[str, str]:
        """Point ``tag`` at a version (the tag moves; versions never change).

        Args:
            name: The version (id, prefix or tag).
            tag: A name like ``staging`` or ``production`` (not a version id, no ``/``).

        Returns:
            Every tag → version id, after the move.

        Raises:
            ConfigError: ``tag`` cannot be a tag, or ``name`` matches no version.

        Example:
            >>> Registry("registry").promote("staging", "production")
            {'staging': '77ab01c9e2f3', 'production': '77ab01c9e2f3'}
        """
        if not tag or tag in {r.id for r in self._stored_versions()} or "/" in tag:
            raise ConfigError(f"'{tag}' cannot be a tag: use a name like staging or production")
        with _lock(self.root):
            tags = self.tags()
            tags[tag] = self.resolve(name)
            write_json(self.root / "tags.json", tags)  # atomic: temp file + rename
        return tags

    def diff(self, a: str, b: str) -> VersionDiff:
        """What differs between two versions: lineage fields, config keys, eval metrics.

        Args:
            a: The first version (id, prefix or tag).
            b: The second version (id, prefix or tag).

        Returns:
            The differences, each as ``[value in a, value in b]``.

        Example:
            >>> Registry("registry").diff("staging", "production").lineage
            {'seed': [42, 7]}
        """
        left, right = self.show(a), self.show(b)
        out = VersionDiff(a=left.id, b=right.id)
        for key in ("base_model", "strategy", "seed", "parent"):
            pair = [getattr(left.lineage, key), getattr(right.lineage, key)]
            if pair[0] != pair[1]:
                out.lineage[key] = pair
        files = [(v.lineage.data or {}).get("files") for v in (left, right)]
        if files[0] != files[1]:
            out.lineage["data files"] = files
        for key, pair in _flat_diff(left.lineage.config, right.lineage.config):
            out.config[key] = pair
        metrics = [v.eval.metrics if v.eval else {} for v in (left, right)]
        out.eval = {
            s: [metrics[0].get(s), metrics[1].get(s)]
            for s in sorted(set(metrics[0]) | set(metrics[1]))
        }
        return out

    # --- helpers ---------------------------------------------------------------------------

    def _stored_versions(self) -> list[VersionRecord]:
        """Every version's ``version.json`` alone (no tags, exports or path looked up)."""
        folder = self.root / "versions"
        if not folder.is_dir():
            return []
        return [VersionRecord.model_validate(_read(p / "version.json")) for p in folder.iterdir()]

    def _record(self, vid: str, tags: dict[str, str]) -> VersionRecord:
        folder = self.root / "versions" / vid
        record = _read(folder / "version.json")
        record["tags"] = sorted(t for t, v in tags.items() if v == vid)
        exports = folder / "exports"
        record["exports"] = (
            [_read(p / EXPORT_RECORD) for p in sorted(exports.iterdir())]
            if exports.is_dir()
            else []
        )
        record["path"] = str(folder / "model")
        return VersionRecord.model_validate(record)

    def _staging(self) -> Path:
        """A fresh temporary folder inside the registry (same filesystem: rename is atomic);
        leftovers of writers that crashed are removed first."""
        staging_root = self.root / ".staging"
        staging_root.mkdir(parents=True, exist_ok=True)
        for stale in staging_root.iterdir():  # we hold the lock: no other writer is mid-way
            shutil.rmtree(stale, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=staging_root))

    def _version_of(self, meta: dict[str, Any]) -> str:
        source = meta.get("source", {}).get("sha256")
        for record in sorted(self._stored_versions(), key=lambda r: (r.created, r.id)):
            if record.model_sha256 == source:
                return record.id
        raise ConfigError(
            "no version holds the model this export was made from; add the model first, or "
            "name the version with --version"
        )


def _flat_diff(a: Any, b: Any, prefix: str = "") -> list[tuple[str, list[Any]]]:
    """Differing leaves of two nested mappings, as dotted keys."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _flat_diff(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [(prefix.rstrip("."), [a, b])]


def _crash_point(where: str) -> None:
    """Tests only: die here, as a crash would, when EMBEDTUNE_TEST_CRASH names this point."""
    if os.environ.get("EMBEDTUNE_TEST_CRASH") == where:
        os.kill(os.getpid(), 9)
