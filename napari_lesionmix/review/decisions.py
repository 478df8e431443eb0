"""QA decisions: accept / reject / flag with a note, per case, shared by several reviewers.

Where: ``<dataset>/qa/decisions/<reviewer>.json``, one file per reviewer, each an
append-only list of events (who, when, case, decision, note, and a fingerprint of the
case's files). nnU-Net never looks there.

Why one file per reviewer: a reviewer's decision is written at once, by rewriting only
that reviewer's file (temporary name, then rename), so two reviewers deciding at the same
moment never write the same file and cannot lose each other's decisions, on a local disk
or a network share alike, without relying on file locks. The files are merged on read:
a case's decision is the latest event of any reviewer (times in UTC), and every event is
kept as its history. The same reviewer in two windows could still race on their own
file: the write re-reads that file under an advisory lock and merges by event id.

A decision also records the case's fingerprint (its label file's bytes and its images'
names and sizes). If the case is regenerated later (``lesionmix generate --overwrite``),
the old decision no longer matches the files and is reported as stale, never applied.

Examples
--------
>>> store = DecisionStore("out", reviewer="alice")              # doctest: +SKIP
>>> store.decide("brain01_lmix0000", "reject", "lesion in a ventricle")  # doctest: +SKIP
>>> store.verdicts()["brain01_lmix0000"].decision               # doctest: +SKIP
'reject'
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..core.io_utils import atomic_write_text, is_temporary

__all__ = ["DECISIONS", "Event", "Verdict", "DecisionStore", "case_fingerprint",
           "default_reviewer", "qa_folder"]

#: what a reviewer can decide; "clear" withdraws the reviewer's decision
DECISIONS = ("accept", "reject", "flag")
FORMAT = "napari-lesionmix/qa-decisions"
VERSION = 1


def qa_folder(root) -> Path:
    """The dataset's QA folder, ``<root>/qa``."""
    return Path(root) / "qa"


def default_reviewer() -> str:
    """``$LESIONMIX_REVIEWER``, else the login name."""
    name = os.environ.get("LESIONMIX_REVIEWER", "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "reviewer"


def _file_stem(reviewer: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", reviewer).strip(".") or "reviewer"
    return stem[:80]


def case_fingerprint(image_paths, label_path) -> str:
    """Identity of a case's content: its label file's bytes, its images' names and sizes.

    Cheap (label files are small and compress well); a regenerated case gets another one.
    """
    h = hashlib.sha256()
    for p in image_paths:
        p = Path(p)
        h.update(f"{p.name}:{p.stat().st_size}\n".encode())
    if label_path is not None:
        h.update(Path(label_path).read_bytes())
    return h.hexdigest()[:16]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class Event:
    """One decision as written: the history keeps every one."""

    case: str
    decision: str
    note: str = ""
    reviewer: str = ""
    time: str = ""
    fingerprint: str = ""
    id: str = ""

    @classmethod
    def from_dict(cls, d: dict) -> Event:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


@dataclass
class Verdict:
    """A case's current decision, merged over the reviewers.

    Attributes
    ----------
    decision : str
        ``accept``, ``reject``, ``flag``, or "" (undecided or withdrawn).
    note, reviewer, time : str
        Of the event that decided.
    stale : bool
        The deciding event was made on other files (the case was regenerated since).
    history : list of Event
        Every event for the case, oldest first.
    """

    case: str
    decision: str = ""
    note: str = ""
    reviewer: str = ""
    time: str = ""
    stale: bool = False
    history: list = field(default_factory=list)

    @property
    def disagreement(self) -> bool:
        """Reviewers' latest decisions differ."""
        last = {}
        for e in self.history:
            last[e.reviewer] = e.decision
        return len({d for d in last.values() if d in DECISIONS}) > 1

    @property
    def effective(self) -> str:
        """The decision that counts: "" when stale."""
        return "" if self.stale else self.decision


class DecisionStore:
    """The decisions of a dataset (see the module's docstring).

    Parameters
    ----------
    root : path-like
        The dataset folder.
    reviewer : str, optional
        Who decides through this store (default :func:`default_reviewer`).
    """

    def __init__(self, root, reviewer: str | None = None):
        self.root = Path(root)
        self.reviewer = (reviewer or default_reviewer()).strip() or "reviewer"
        self.problems: list[str] = []

    @property
    def folder(self) -> Path:
        return qa_folder(self.root) / "decisions"

    @property
    def path(self) -> Path:
        """This reviewer's file."""
        return self.folder / f"{_file_stem(self.reviewer)}.json"

    # ------------------------------------------------------------------ writing
    def decide(self, case: str, decision: str, note: str = "", fingerprint: str = "") -> Event:
        """Record ``decision`` ("accept", "reject", "flag" or "clear") for ``case`` now.

        The reviewer's file is rewritten atomically before this returns.
        """
        if decision not in DECISIONS + ("clear",):
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)} or clear, "
                             f"got {decision!r}")
        event = Event(case, decision, note.strip(), self.reviewer, _now(), fingerprint,
                      uuid.uuid4().hex)
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._locked():
            events = self._read_file(self.path)
            events.append(event)
            data = {"format": FORMAT, "version": VERSION, "reviewer": self.reviewer,
                    "events": [asdict(e) for e in events]}
            atomic_write_text(self.path, json.dumps(data, indent=1) + "\n")
        return event

    @contextlib.contextmanager
    def _locked(self):
        """Advisory lock on this reviewer's file (best effort: none where fcntl is missing)."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        lock = self.folder / f".{self.path.name}.lock"
        with open(lock, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ reading
    def _read_file(self, path: Path) -> list:
        if not path.exists():
            return []
        try:
            data = json.loads(path.read_text())
            if data.get("format") != FORMAT:
                raise ValueError("not a decisions file")
            return [Event.from_dict(e) for e in data["events"]]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}: unreadable decisions file ({exc}); move it aside to "
                             "go on") from None

    def events(self) -> list:
        """Every reviewer's events, oldest first (merged on read).

        An unreadable reviewer file is skipped and named in :attr:`problems`.
        """
        self.problems = []
        seen, out = set(), []
        if not self.folder.is_dir():
            return out
        for path in sorted(self.folder.glob("*.json")):
            if is_temporary(path):
                continue
            try:
                events = self._read_file(path)
            except ValueError as exc:
                self.problems.append(str(exc))
                continue
            for e in events:
                if e.id not in seen:
                    seen.add(e.id)
                    out.append(e)
        # a stable sort: one reviewer's events in the same millisecond keep the order of
        # their file, which is the order they were made in (Accept then Clear: cleared)
        out.sort(key=lambda e: (e.time, e.reviewer))
        return out

    def verdicts(self, fingerprints: dict | None = None) -> dict:
        """Case name → :class:`Verdict`, the latest event of any reviewer deciding.

        Parameters
        ----------
        fingerprints : dict, optional
            Case name → current :func:`case_fingerprint`; a deciding event made on
            another fingerprint is stale.
        """
        out: dict = {}
        for e in self.events():
            v = out.setdefault(e.case, Verdict(e.case))
            v.history.append(e)
            v.decision = "" if e.decision == "clear" else e.decision
            v.note, v.reviewer, v.time = e.note, e.reviewer, e.time
            v.stale = bool(fingerprints and e.fingerprint and e.case in fingerprints
                           and fingerprints[e.case] != e.fingerprint)
        return out
