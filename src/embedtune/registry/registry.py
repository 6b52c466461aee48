"""A model registry in a local folder.

    REGISTRY/
      versions/<id>/model/          the model folder, as added (never changed afterwards)
      versions/<id>/version.json    id, content hash, lineage, eval summary
      versions/<id>/report.json     the eval report, when one was given
      versions/<id>/exports/<id>/   exports of this version (each immutable)
      versions/<id>/profiles/<id>/  monitor profiles of this version (each immutable)
      tags.json                     tag → version id (replaced atomically on every move)
      .lock                         held by every writer (file lock: concurrent adds are safe)

A version's id is the start of its content hash: weights, tokenizer and module configs, not
the model card or the settings record (which carry dates and timings). Adding the same content twice
returns the existing version. Everything is built in a temporary folder and renamed into place,
so a crash never leaves half a version.

Nothing read is trusted: names and tags follow one grammar (:data:`NAME_PATTERN`; a tag is never
all hex digits, so it cannot pass for an id or an id prefix), a model folder holding links is
refused, a report must be an eval report, and :meth:`Registry.verified_path` re-hashes a
version's files before they are loaded.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from embedtune.errors import ConfigError, DataError
from embedtune.io import sha256_file, write_json
from embedtune.model_folder import SETTINGS_FILE, read_settings
from embedtune.models import folder_sha256
from embedtune.outputs import check_output
from embedtune.registry.records import (
    EvalSummary,
    ExportRecord,
    Lineage,
    VersionDiff,
    VersionRecord,
)

logger = logging.getLogger(__name__)

__all__ = ["ID_LENGTH", "NAME_PATTERN", "Registry"]

ID_LENGTH = 12
# What identifies a model's behaviour: everything but the card and embedtune's run record.
NOT_CONTENT = ("README.md", SETTINGS_FILE)
EXPORT_RECORD = "export-record.json"
EXPORT_META = "export.json"  # written by the export stage (which the registry must not import)
PROFILE_META = "profile.json"  # written by the monitor stage (likewise)
# A version name or a tag: nothing a terminal or rich markup would interpret, nothing that spans
# lines or paths. A tag is, besides, never all hex digits: it could pass for an id prefix.
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_NAME = re.compile(NAME_PATTERN)
_HEX = re.compile(r"[0-9a-fA-F]+")
_GRAMMAR = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
# Model folders verified in this process: resolved folder → (expected hash, file signature).
_VERIFIED: dict[str, tuple[str, tuple[tuple[str, int, int, int, int], ...]]] = {}


def _lock(root: Path) -> Any:
    from filelock import FileLock

    root.mkdir(parents=True, exist_ok=True)
    return FileLock(str(root / ".lock"), timeout=600)


def _read(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def check_name(name: str) -> str:
    """A version name fits the grammar (it is printed in tables and sent over the network)."""
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{name!r} cannot be a version name: use {_GRAMMAR}")
    return name


def _default_name(folder: Path) -> str:
    """A folder's name made to fit the grammar (``fin [v2]`` → ``fin-v2``)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", folder.name).strip("-._")[:64]
    return name if _NAME.fullmatch(name) else "model"


def check_tag(tag: str) -> None:
    """A tag fits the grammar and cannot pass for a version id or id prefix."""
    if not _NAME.fullmatch(tag) or _HEX.fullmatch(tag):
        raise ConfigError(
            f"{tag!r} cannot be a tag: use {_GRAMMAR}, not all hex digits (that could pass "
            "for a version id), e.g. staging or production"
        )


def _refuse_links(folder: Path) -> None:
    """A link inside a model folder would be followed on copy (a link to /etc was): refuse."""
    for parent, dirs, files in os.walk(folder):
        for entry in sorted(dirs + files):
            if os.path.islink(os.path.join(parent, entry)):
                link = Path(parent, entry)
                raise DataError(
                    f"the model folder holds a link ({link.relative_to(folder).as_posix()} → "
                    f"{os.readlink(link)!r}); links are refused",
                    path=link,
                    hint="copy the folder without links (cp -rL) and add the copy",
                )


def _read_report(path: Path) -> dict[str, Any]:
    """An eval report as :func:`embedtune.evaluate.evaluate` writes it, or one clear error."""
    raw = path.read_bytes()  # OSError (missing, unreadable) is reported by the caller
    try:
        report = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        report = None
    systems = report.get("systems") if isinstance(report, dict) else None
    valid = (
        isinstance(report, dict)
        and isinstance(report.get("data"), dict)
        and isinstance(systems, dict)
        and bool(systems)
        and all(
            isinstance(metrics, dict)
            and bool(metrics)
            and all(
                v is None or (isinstance(v, int | float) and not isinstance(v, bool))
                for v in metrics.values()
            )
            for metrics in systems.values()
        )
    )
    if not valid:
        raise DataError(
            "not an embedtune eval report (a JSON object with 'systems' → metrics and 'data', "
            "as `embedtune eval` writes report.json)",
            path=path,
        )
    return dict(report)


def _fresh_sha256(folder: Path, exclude: tuple[str, ...]) -> str:
    """:func:`~embedtune.models.folder_sha256` without its per-process cache: what the bytes
    on disk hash to now (a folder rewritten since the last call must not hash as before)."""
    return folder_sha256.__wrapped__(str(folder), exclude)


def _signature(folder: Path) -> tuple[tuple[str, int, int, int, int], ...]:
    """Every file's path, size, times and inode: cheap, and changes when a file is rewritten."""
    out = []
    for parent, _, files in os.walk(folder):
        for name in files:
            st = os.lstat(os.path.join(parent, name))
            rel = os.path.relpath(os.path.join(parent, name), folder)
            out.append((rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    return tuple(sorted(out))


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

        Raises:
            ConfigError: There is no registry folder at ``root``.
            DataError: ``tags.json`` is not a mapping of tag → id.
        """
        self._existing()
        path = self.root / "tags.json"
        if not path.is_file():
            return {}
        try:
            tags = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            tags = None
        if not isinstance(tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
        ):
            raise DataError("not a registry's tags file (a JSON object of tag → id)", path=path)
        return dict(tags)

    def versions(self) -> list[VersionRecord]:
        """Every version, oldest first, with its tags, exports and model folder.

        Returns:
            One record per version, ordered by creation time (then id).

        Raises:
            ConfigError: There is no registry folder at ``root`` (or it is a file).

        Example:
            >>> [(v.id, v.name, v.tags) for v in Registry("registry").versions()]
            [('3f9c0e1a2b4d', 'fin-v1', ['production']), ('77ab01c9e2f3', 'fin-v2', [])]
        """
        tags = self.tags()
        folder = self.root / "versions"
        if not folder.is_dir():
            return []
        records = [self._record(p.name, tags) for p in folder.iterdir() if p.is_dir()]
        return sorted(records, key=lambda r: (r.created, r.id))

    def resolve(self, name: str) -> str:
        """The version id that ``name`` stands for.

        Ids are looked up before tags: a tag never shadows an id or an id prefix (tags cannot
        be all hex digits, and one in a tags file written otherwise loses to the ids).

        Args:
            name: A version id, a unique prefix of one, or a tag.

        Returns:
            The full version id.

        Raises:
            ConfigError: No version or tag matches, the prefix matches several versions, or
                there is no registry at ``root``.

        Example:
            >>> Registry("registry").resolve("production")
            '3f9c0e1a2b4d'
        """
        tags = self.tags()
        ids = [r.id for r in self._stored_versions()]
        matches = [i for i in ids if name and i.startswith(name)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ConfigError(f"'{name}' matches several versions: {', '.join(matches)}")
        if name in tags:
            return tags[name]
        raise ConfigError(
            f"no version or tag {name!r} in {self.root}: see `embedtune registry list`"
        )

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
        """The model folder of the version ``name`` stands for (id, prefix or tag), unchecked:
        load a model from :meth:`verified_path`."""
        return self.root / "versions" / self.resolve(name) / "model"

    def verified_path(self, name: str) -> Path:
        """The model folder of a version, after checking that its files still hash to what was
        recorded when it was added (every file but the card, settings record included).

        Cost: the first call per version per process reads and hashes the whole folder with
        sha256, roughly 1 s per GB: the default all-MiniLM-L6-v2 folder (92 MB, 14 entries)
        took 0.07-0.15 s (page cache warm, 2 busy shared cores; a cold disk adds its read
        time). Later calls only ``stat`` the files (under 1 ms) and hash again when a file's
        size, times or inode changed, or a file was added or removed.

        Args:
            name: A version id, a unique prefix of one, or a tag.

        Returns:
            The version's model folder inside the registry.

        Raises:
            ConfigError: ``name`` matches no version (or several).
            DataError: The folder's files changed after the version was added, or it holds
                a link.

        Example:
            >>> Registry("registry").verified_path("production")
            PosixPath('registry/versions/3f9c0e1a2b4d/model')
        """
        record = self.show(name)
        folder = Path(record.path)
        _refuse_links(folder)
        # model_sha256 covers the settings record too (passages, prompts); records written
        # before it existed have only the content hash.
        exclude: tuple[str, ...] = ("README.md",) if record.model_sha256 else NOT_CONTENT
        expected = record.model_sha256 or record.content_sha256
        key, signature = str(folder.resolve()), _signature(folder)
        if _VERIFIED.get(key) == (expected, signature):
            return folder
        actual = _fresh_sha256(folder, exclude)
        if actual != expected:
            _VERIFIED.pop(key, None)
            raise DataError(
                f"version {record.id}'s model folder does not match its hash (recorded "
                f"{expected[:ID_LENGTH]}, now {actual[:ID_LENGTH]}): its files changed after "
                "it was added",
                path=folder,
                hint="add the model again from its source folder",
            )
        _VERIFIED[key] = (expected, signature)
        return folder

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
            DataError: ``model`` is not a model folder, holds a link, its settings record
                is malformed, or ``report`` is not an eval report.
            ConfigError: ``name`` does not fit the grammar (:data:`NAME_PATTERN`), ``parent``
                matches no version, or ``root`` is a file.

        Example:
            >>> Registry("registry").add("runs/fin/model", name="fin-v1").id
            '3f9c0e1a2b4d'
        """
        # Everything that can be refused is checked before the registry folder is created.
        if name is not None:
            check_name(name)
        if self.root.exists() and not self.root.is_dir():
            self._existing()
        source = Path(model)
        if not (source / "modules.json").is_file():
            raise DataError(
                "not a sentence-transformers model folder (no modules.json)", path=source
            )
        source = source.resolve()
        # a registry inside the model folder would copy itself into itself
        check_output(self.root, [source], option="--registry", exists_ok=True, holds_inputs=True)
        _refuse_links(source)
        loaded = None if report is None else _read_report(Path(report))
        parent_id = self.resolve(parent) if parent else None  # versions are never removed
        content = _fresh_sha256(source, NOT_CONTENT)
        vid = content[:ID_LENGTH]
        with _lock(self.root):
            target = self.root / "versions" / vid
            if target.is_dir():
                logger.info("version %s already holds this content; nothing added", vid)
                return self.show(vid)
            stored = read_settings(source)
            settings = {} if stored is None else stored.model_dump(mode="json")
            record = VersionRecord(
                id=vid,
                content_sha256=content,
                # the hash exports record as their source (all files but the card)
                model_sha256=_fresh_sha256(source, ("README.md",)),
                name=name or _default_name(source),
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
                # symlinks=True: a link made after the check above is copied as a link (and
                # refused by verified_path), never followed
                shutil.copytree(
                    source,
                    staging / "model",
                    symlinks=True,
                    ignore=shutil.ignore_patterns(".*"),
                )
                if report is not None and loaded is not None:
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
        check_output(self.root, [folder], option="--registry", exists_ok=True, holds_inputs=True)
        meta = _read(meta_file)
        int8 = meta.get("parity", {}).get("int8", {})
        if int8.get("ok") is False:
            raise ConfigError(
                f"{folder}: its int8 model failed the parity check (nDCG@10 drop "
                f"{int8.get('ndcg_drop')}); re-export, or export without onnx-int8"
            )
        if not self.root.is_dir():
            if version is None and not self.root.exists():
                raise ConfigError(
                    f"no registry at {self.root}: no version holds the model this export was "
                    "made from; add the model first"
                )
            self._existing()
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

    def add_profile(self, profile: str | os.PathLike[str], version: str) -> Path:
        """Keep a monitor profile folder (``profile.json`` + its arrays) beside a version,
        content-addressed and immutable like an export:
        ``versions/<id>/profiles/<start of sha256 of profile.json>/``.

        Args:
            profile: The profile folder (from ``embedtune monitor profile``).
            version: The version it profiles (id, prefix or tag).

        Returns:
            The stored folder (the same profile added twice is one folder).

        Raises:
            DataError: ``profile`` holds no ``profile.json``.
            ConfigError: ``version`` matches no version.
        """
        folder = Path(profile)
        meta_file = folder / PROFILE_META
        if not meta_file.is_file():
            raise DataError(f"not a monitor profile (no {PROFILE_META})", path=folder)
        self._existing()
        with _lock(self.root):
            vid = self.resolve(version)
            target = self.root / "versions" / vid / "profiles" / sha256_file(meta_file)[:ID_LENGTH]
            if not target.is_dir():
                staging = self._staging()
                try:
                    shutil.copytree(folder, staging / "p")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staging / "p", target)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
        return target

    def profiles(self, version: str) -> list[Path]:
        """A version's monitor profile folders, oldest first (by ``profile.json``'s time)."""
        folder = self.root / "versions" / self.resolve(version) / "profiles"
        if not folder.is_dir():
            return []
        found = [p for p in folder.iterdir() if (p / PROFILE_META).is_file()]
        return sorted(found, key=lambda p: ((p / PROFILE_META).stat().st_mtime_ns, p.name))

    def promote(self, name: str, tag: str) -> dict[str, str]:
        """Point ``tag`` at a version (the tag moves; versions never change).

        Args:
            name: The version (id, prefix or tag).
            tag: A name like ``staging`` or ``production``: it fits :data:`NAME_PATTERN` and
                is not all hex digits (which could pass for a version id or prefix).

        Returns:
            Every tag → version id, after the move.

        Raises:
            ConfigError: ``tag`` cannot be a tag, ``name`` matches no version, or there is no
                registry at ``root`` (none is created).

        Example:
            >>> Registry("registry").promote("staging", "production")
            {'staging': '77ab01c9e2f3', 'production': '77ab01c9e2f3'}
        """
        check_tag(tag)
        self._existing()
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

    def _existing(self) -> None:
        """Refuse a registry path that is missing or not a folder (reading creates nothing)."""
        if self.root.is_dir():
            return
        if self.root.exists():
            raise ConfigError(f"{self.root} is not a registry folder (it is a file)")
        raise ConfigError(f"no registry at {self.root}")

    def _stored_versions(self) -> list[VersionRecord]:
        """Every version's ``version.json`` alone (no tags, exports or path looked up)."""
        folder = self.root / "versions"
        if not folder.is_dir():
            return []
        return [
            VersionRecord.model_validate(_read(p / "version.json"))
            for p in folder.iterdir()
            if p.is_dir()
        ]

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
