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

logger = logging.getLogger(__name__)

ID_LENGTH = 12
# What identifies a model's behaviour: everything but the card and embedtune's run record.
NOT_CONTENT = ("README.md", SETTINGS_FILE)


def _lock(root: Path) -> Any:
    from filelock import FileLock

    root.mkdir(parents=True, exist_ok=True)
    return FileLock(str(root / ".lock"), timeout=600)


def _read(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _eval_summary(report: dict[str, Any]) -> dict[str, Any]:
    """nDCG@10 (or the first metric) of each system, and which split it was measured on."""
    systems = report.get("systems", {})
    return {
        "split": report.get("data", {}).get("split"),
        "queries": report.get("data", {}).get("evaluated_queries"),
        "metrics": {s: v.get("ndcg@10", next(iter(v.values()), None)) for s, v in systems.items()},
    }


class Registry:
    """Versions, exports and tags in one folder; every write holds the registry's lock."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # --- reading ---------------------------------------------------------------------------

    def tags(self) -> dict[str, str]:
        path = self.root / "tags.json"
        return _read(path) if path.is_file() else {}

    def versions(self) -> list[dict[str, Any]]:
        """Every version's record, oldest first."""
        folder = self.root / "versions"
        records = [_read(p / "version.json") for p in folder.iterdir()] if folder.is_dir() else []
        return sorted(records, key=lambda r: (r["created"], r["id"]))

    def resolve(self, name: str) -> str:
        """A version id from an id, a unique id prefix, or a tag."""
        tags = self.tags()
        if name in tags:
            return tags[name]
        ids = [r["id"] for r in self.versions()]
        matches = [i for i in ids if i.startswith(name)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise ConfigError(
                f"no version or tag '{name}' in {self.root}: see `embedtune registry list`"
            )
        raise ConfigError(f"'{name}' matches several versions: {', '.join(matches)}")

    def show(self, name: str) -> dict[str, Any]:
        """A version's record with its tags and exports."""
        vid = self.resolve(name)
        folder = self.root / "versions" / vid
        record = _read(folder / "version.json")
        record["tags"] = sorted(t for t, v in self.tags().items() if v == vid)
        exports = folder / "exports"
        record["exports"] = (
            [_read(p / "export-record.json") for p in sorted(exports.iterdir())]
            if exports.is_dir()
            else []
        )
        record["path"] = str(folder / "model")
        return record

    def model_path(self, name: str) -> Path:
        return self.root / "versions" / self.resolve(name) / "model"

    # --- writing ---------------------------------------------------------------------------

    def add(
        self,
        model: str | Path,
        *,
        report: str | Path | None = None,
        parent: str | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Add a model folder as a version (or return the version with the same content)."""
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
            record = read_settings(source)
            settings = {} if record is None else record.model_dump(mode="json")
            record: dict[str, Any] = {
                "id": vid,
                "content_sha256": content,
                # the hash exports record as their source (all files but the card)
                "model_sha256": folder_sha256(str(source.resolve())),
                "name": name or source.resolve().name,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "lineage": {
                    "base_model": settings.get("base_model"),
                    "strategy": settings.get("strategy"),
                    "data": settings.get("data"),
                    "config": settings.get("config"),
                    "seed": settings.get("seed"),
                    "parent": parent_id,
                },
                "dev": settings.get("dev"),
                "eval": None,
            }
            staging = self._staging()
            try:
                shutil.copytree(source, staging / "model", ignore=shutil.ignore_patterns(".*"))
                if report is not None:
                    loaded = _read(Path(report))
                    shutil.copyfile(report, staging / "report.json")
                    record["eval"] = _eval_summary(loaded)
                write_json(staging / "version.json", record)
                _crash_point("version")
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        logger.info("added version %s (%s)", vid, record["name"])
        return self.show(vid)

    def add_export(self, export: str | Path, version: str | None = None) -> dict[str, Any]:
        """Add an export folder as an immutable child of its version.

        The version is found from the export's source model hash, or given explicitly.
        """
        folder = Path(export)
        meta_file = folder / "export.json"
        if not meta_file.is_file():
            raise DataError("not an embedtune export (no export.json)", path=folder)
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
                    write_json(
                        staging / "export-record.json",
                        {
                            "id": eid,
                            "version": vid,
                            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "files": meta.get("files", {}),
                            "parity": meta.get("parity", {}),
                            "path": str(target / "files"),
                        },
                    )
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staging, target)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
        return _read(target / "export-record.json")

    def promote(self, name: str, tag: str) -> dict[str, str]:
        """Point ``tag`` (e.g. staging, production) at a version; returns all tags."""
        if not tag or tag in {r["id"] for r in self.versions()} or "/" in tag:
            raise ConfigError(f"'{tag}' cannot be a tag: use a name like staging or production")
        with _lock(self.root):
            tags = self.tags()
            tags[tag] = self.resolve(name)
            write_json(self.root / "tags.json", tags)  # atomic: temp file + rename
        return tags

    def diff(self, a: str, b: str) -> dict[str, Any]:
        """What differs between two versions: lineage fields, config keys, eval metrics."""
        left, right = self.show(a), self.show(b)
        out: dict[str, Any] = {"a": left["id"], "b": right["id"], "lineage": {}, "config": {}}
        for key in ("base_model", "strategy", "seed", "parent"):
            if left["lineage"].get(key) != right["lineage"].get(key):
                out["lineage"][key] = [left["lineage"].get(key), right["lineage"].get(key)]
        files = [
            (left["lineage"].get("data") or {}).get("files"),
            (right["lineage"].get("data") or {}).get("files"),
        ]
        if files[0] != files[1]:
            out["lineage"]["data files"] = files
        for key, pair in _flat_diff(left["lineage"].get("config"), right["lineage"].get("config")):
            out["config"][key] = pair
        metrics = [(v.get("eval") or {}).get("metrics", {}) for v in (left, right)]
        out["eval"] = {
            s: [metrics[0].get(s), metrics[1].get(s)]
            for s in sorted(set(metrics[0]) | set(metrics[1]))
        }
        return out

    # --- helpers ---------------------------------------------------------------------------

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
        for record in self.versions():
            if record.get("model_sha256") == source:
                return str(record["id"])
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
