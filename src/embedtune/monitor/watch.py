"""The long-running watcher: the one-shot checks (drift, probe, canary) on a schedule, as a
config's ``monitor`` section says (:class:`~embedtune.monitor.config.WatchConfig`).

Each cycle, for every watched tag: (1) if the tag moved to another version since the last
cycle, the old version's canary texts are re-embedded by the new one (a model change, not
drift); (2) the newest logged windows not yet checked are tested against the version's
newest profile, once they hold ``window`` queries; (3) every ``probe.every`` cycles the probe
set is re-run and compared with its history. Every result is a line of ``events.jsonl``;
alerts go to the webhook. What was checked is kept in ``state.json`` (written atomically), so
a restarted watcher neither repeats nor skips a window.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from embedtune.embedding_windows import list_windows, read_window
from embedtune.errors import ConfigError, EmbedtuneError
from embedtune.io import write_json
from embedtune.monitor.config import ProbeSettings, WatchConfig
from embedtune.monitor.profile import Profile, load_profile
from embedtune.monitor.report import post_webhook

if TYPE_CHECKING:
    from embedtune.monitor.source import ModelSource
    from embedtune.registry import Registry

logger = logging.getLogger(__name__)

__all__ = ["WatchEvent", "Watcher"]

STATE_FILE = "state.json"
EVENTS_FILE = "events.jsonl"


class WatchEvent(BaseModel):
    """One result of a watch cycle (a line of ``events.jsonl``; the webhook's payload).

    Attributes:
        time: UTC time.
        cycle: The cycle it came from.
        kind: ``drift``, ``probe``, ``canary`` or ``error`` (a check that could not run).
        model: The watched tag or id.
        version: The version id it resolved to.
        status: The check's status (``ok``, ``shift``, ``drift``, ``alert``, ``baseline``,
            ``same``, ``model-change``, ``error``).
        alert: Whether it alerts.
        summary: One line for people.
        detail: The check's full result.
    """

    time: str
    cycle: int
    kind: Literal["drift", "probe", "canary", "error"]
    model: str
    version: str | None = None
    status: str
    alert: bool = False
    summary: str = ""
    detail: dict[str, Any] = Field(default_factory=dict)


class Watcher:
    """Follows a :class:`WatchConfig`; :meth:`cycle` runs one pass, :meth:`run` loops.

    Example:
        >>> watcher = Watcher(WatchConfig(registry="registry", windows="logs",
        ...                               models=["production"], output="monitor"))
        >>> [e.status for e in watcher.cycle()]
        ['ok']
    """

    def __init__(self, config: WatchConfig) -> None:
        from embedtune.registry import Registry

        if config.registry is None:
            raise ConfigError("monitor.registry: give the registry folder to watch")
        self.config = config
        self.registry: Registry = Registry(config.registry)
        self.registry.tags()  # a missing registry fails here, not in the first cycle
        self.output = Path(config.output)
        self.output.mkdir(parents=True, exist_ok=True)
        self.state = self._read_state()
        self._sources: dict[str, ModelSource] = {}

    # -- state -------------------------------------------------------------------------------

    def _read_state(self) -> dict[str, Any]:
        path = self.output / STATE_FILE
        if not path.is_file():
            return {"cycle": 0, "versions": {}, "checked": {}}
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            state = None
        if not isinstance(state, dict) or not isinstance(state.get("checked"), dict):
            raise ConfigError(f"{path}: not a watcher state file (delete it to start over)")
        return state

    def _save(self, events: list[WatchEvent]) -> None:
        if events:  # one write per cycle, whole lines
            text = "".join(event.model_dump_json() + "\n" for event in events)
            with open(self.output / EVENTS_FILE, "a", encoding="utf-8") as handle:
                handle.write(text)
        write_json(self.output / STATE_FILE, self.state)

    # -- one cycle ---------------------------------------------------------------------------

    def models(self) -> list[str]:
        return self.config.models or sorted(self.registry.tags())

    def cycle(self) -> list[WatchEvent]:
        """One pass over every watched model; the events it produced (also appended to
        ``events.jsonl`` and, for alerts, posted to the webhook)."""
        self.state["cycle"] = number = int(self.state.get("cycle", 0)) + 1
        events: list[WatchEvent] = []
        for name in self.models():
            try:
                events += self._watch(name, number)
            except EmbedtuneError as exc:  # one broken model must not stop the others
                events.append(self._event(number, "error", name, None, "error", str(exc)))
        self._save(events)
        for event in events:
            logger.info("%s %s %s: %s", event.kind, event.model, event.status, event.summary)
            if self.config.webhook is not None and (event.alert or self.config.webhook_always):
                problem = post_webhook(self.config.webhook, event.model_dump(mode="json"))
                if problem is not None:  # the event is in events.jsonl all the same
                    logger.warning("%s", problem)
        return events

    def run(self, cycles: int | None = None) -> list[WatchEvent]:
        """Cycle every ``interval_s`` seconds, ``cycles`` times (None: until interrupted);
        the alerts raised."""
        alerts: list[WatchEvent] = []
        done = 0
        while cycles is None or done < cycles:
            started = time.monotonic()
            alerts += [e for e in self.cycle() if e.alert]
            done += 1
            if cycles is not None and done >= cycles:
                break
            time.sleep(max(0.0, self.config.interval_s - (time.monotonic() - started)))
        return alerts

    def _event(
        self,
        cycle: int,
        kind: str,
        model: str,
        version: str | None,
        status: str,
        summary: str,
        *,
        alert: bool | None = None,
        detail: dict[str, Any] | None = None,
    ) -> WatchEvent:
        return WatchEvent(
            time=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            cycle=cycle,
            kind=kind,  # type: ignore[arg-type]
            model=model,
            version=version,
            status=status,
            alert=(kind == "error") if alert is None else alert,
            summary=summary,
            detail=detail or {},
        )

    def _watch(self, name: str, cycle: int) -> list[WatchEvent]:
        vid = self.registry.resolve(name)
        events: list[WatchEvent] = []
        before = self.state["versions"].get(name)
        self.state["versions"][name] = vid
        if before is not None and before != vid and self.config.canary:
            events += self._canary(name, before, vid, cycle)
        profile = self._profile(vid)
        if profile is None:
            if before != vid:  # said once per version, not every cycle
                events.append(
                    self._event(
                        cycle, "error", name, vid, "error",
                        f"version {vid} has no monitor profile: no drift or canary checks "
                        "(build one with `embedtune monitor profile --version ...`)",
                    )
                )  # fmt: skip
        elif self.config.windows is not None:
            events += self._drift(name, vid, profile, cycle)
        probe = self.config.probe
        if probe is not None and (cycle - 1) % probe.every == 0:
            events += self._probe(name, vid, cycle)
        return events

    def _profile(self, vid: str) -> Profile | None:
        found = self.registry.profiles(vid)
        return load_profile(found[-1]) if found else None

    def _source(self, vid: str, variant: str = "torch") -> ModelSource:
        from embedtune.monitor.source import open_source

        key = f"{vid}:{variant}"
        if key not in self._sources:
            self._sources[key] = open_source(registry=self.registry, version=vid, variant=variant)
        return self._sources[key]

    def _drift(self, name: str, vid: str, profile: Profile, cycle: int) -> list[WatchEvent]:
        from embedtune.monitor.monitor import check_drift, write_check

        folder = Path(str(self.config.windows)) / vid
        if not folder.is_dir():
            return []
        seen = self.state["checked"].get(vid, "")
        fresh = [p for p in list_windows(folder) if p.name > seen]
        queries = sum(int(read_window(p).meta.get("queries", 0)) for p in fresh)
        if not fresh or queries < self.config.window:
            return []  # not enough new queries yet: wait for the next cycle
        result, extras = check_drift(
            profile,
            folder,
            last=len(fresh),
            alpha=self.config.alpha,
            tests=None if self.config.tests is None else list(self.config.tests),
        )
        self.state["checked"][vid] = fresh[-1].name
        write_check(
            profile, result, extras, self.output / _safe(name) / "drift", inputs=[folder],
            overwrite=True,
        )  # fmt: skip
        fired = ", ".join(t.name for t in result.tests if t.rejected) or "none"
        alert = result.drift or (self.config.fail_on_shift and result.shift)
        return [
            self._event(
                cycle, "drift", name, vid, result.status,
                f"{result.window.queries} queries in {len(fresh)} window(s), tests fired: {fired}",
                alert=alert, detail=result.model_dump(mode="json"),
            )
        ]  # fmt: skip

    def _canary(self, name: str, before: str, vid: str, cycle: int) -> list[WatchEvent]:
        from embedtune.monitor.monitor import run_canary

        old = self._profile(before)
        if old is None:
            return [
                self._event(
                    cycle, "canary", name, vid, "unchecked",
                    f"tag moved {before} → {vid}; the old version has no profile to compare",
                    alert=False,
                )
            ]  # fmt: skip
        result = run_canary(old, self._source(vid, self.config.variant))
        return [
            self._event(
                cycle, "canary", name, vid, result.status,
                f"tag moved {before} → {vid}: min canary cosine {result.min_cosine:.6f} "
                f"(same model ≥ {result.allowed_min_cosine:.6f})",
                alert=result.changed, detail=result.model_dump(mode="json"),
            )
        ]  # fmt: skip

    def _probe(self, name: str, vid: str, cycle: int) -> list[WatchEvent]:
        from embedtune.monitor.probe import run_probe

        probe = self.config.probe
        assert probe is not None
        folder = self.output / _safe(name)
        folder.mkdir(parents=True, exist_ok=True)
        result = run_probe(
            probe.data,
            self._source(vid),
            split=probe.split,
            history=folder / "probe.jsonl",
            settings=ProbeSettings(margin=probe.margin),
            registry_root=self.registry.root,
        )
        return [
            self._event(
                cycle, "probe", name, vid, result.status, result.reason, alert=result.alert,
                detail=result.model_dump(mode="json", exclude={"per_query"}),
            )
        ]  # fmt: skip


def _safe(name: str) -> str:
    """A served name as a folder name (tags and ids are already safe; this keeps it so)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
