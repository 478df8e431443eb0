"""The QA state of a dataset: each case's row joined with its current decision.

``lesionmix qa OUTPUT`` prints :func:`format_summary` of :func:`qa_state`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .decisions import DECISIONS, DecisionStore, case_fingerprint

__all__ = ["QAState", "qa_state", "format_summary", "fingerprints"]

PAST = {"accept": "accepted", "reject": "rejected", "flag": "flagged"}


def fingerprints(review, cache: dict | None = None) -> dict:
    """Case name → :func:`case_fingerprint` of every readable case of ``review``.

    ``cache`` (kept by a caller that asks again, e.g. the Review dock) maps each case's
    files, sizes and modification times to its fingerprint, so unchanged files are not
    read again.
    """
    out = {}
    for r in review.rows:
        if r.problem:
            continue
        try:
            files = list(r.image_paths) + [r.label_path]
            key = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in map(Path, files))
            if cache is not None and key in cache:
                out[r.name] = cache[key]
                continue
            out[r.name] = case_fingerprint(r.image_paths, r.label_path)
            if cache is not None:
                cache[key] = out[r.name]
        except OSError:
            continue
    return out


@dataclass
class QAState:
    """Rows, verdicts and what the QA folder says about the dataset."""

    rows: list
    verdicts: dict
    removed: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    pending_removal: list | None = None

    def decision(self, name: str) -> str:
        v = self.verdicts.get(name)
        return "" if v is None else v.effective

    def counts(self) -> Counter:
        c = Counter(self.decision(r.name) or "undecided" for r in self.rows)
        c["stale"] = sum(1 for r in self.rows if r.name in self.verdicts
                         and self.verdicts[r.name].stale)
        return c

    def cases_with(self, decision: str) -> list:
        return [r.name for r in self.rows if self.decision(r.name) == decision]


def qa_state(review, store: DecisionStore | None = None, cache: dict | None = None) -> QAState:
    """The QA state of a :class:`~.index.ReviewDataset` (``cache``: see
    :func:`fingerprints`)."""
    from .remove import pending_removal  # the journal lives with the removal code

    store = store or DecisionStore(review.root)
    verdicts = store.verdicts(fingerprints(review, cache))
    removed = dict((review.manifest or {}).get("removed", {}))
    pending = pending_removal(review.root)
    return QAState(review.rows, verdicts, removed, list(store.problems) + list(review.notes),
                   None if pending is None else pending["cases"])


def _ml(v) -> str:
    return "" if v is None else f"{v / 1000:.2f}"


def format_summary(review, state: QAState, every_case: bool = True) -> str:
    """The text ``lesionmix qa`` prints: a table of cases, then the counts."""
    lines = []
    if every_case:
        header = ("case", "kind", "source", "target ml", "achieved ml", "status", "+", "−",
                  "decision", "by", "when", "note")
        table = []
        for r in state.rows:
            v = state.verdicts.get(r.name)
            dec = "" if v is None else (v.decision + (" (stale)" if v.stale else "")
                                        + (" *" if v.disagreement else ""))
            table.append((r.name, r.kind, r.source or "", _ml(r.target_load_mm3),
                          _ml(r.achieved_load_mm3), r.status or r.problem[:30],
                          "" if r.added is None else str(r.added),
                          "" if r.removed is None else str(r.removed), dec,
                          "" if v is None else v.reviewer,
                          "" if v is None else v.time[:16].replace("T", " "),
                          "" if v is None else v.note))
        widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h)
                  for i, h in enumerate(header)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines.append(fmt.format(*header).rstrip())
        lines += [fmt.format(*t).rstrip() for t in table]
    c = state.counts()
    n = len(state.rows)
    parts = [f"{c[d]} {PAST[d]}" for d in DECISIONS]
    lines.append(f"{review.root}: {n} case(s): " + ", ".join(parts)
                 + f", {c['undecided']} undecided")
    if c["stale"]:
        lines.append(f"{c['stale']} decision(s) are stale: made on files that have changed "
                     "since (the case was regenerated); they count as undecided")
    split = sum(1 for r in state.rows
                if r.name in state.verdicts and state.verdicts[r.name].disagreement)
    if split:
        lines.append(f"{split} case(s) where reviewers disagree (marked *): the latest "
                     "decision counts")
    reviewers = sorted({e.reviewer for v in state.verdicts.values() for e in v.history})
    if reviewers:
        lines.append("reviewers: " + ", ".join(reviewers))
    if state.removed:
        lines.append(f"{len(state.removed)} case(s) already removed: "
                     + ", ".join(sorted(state.removed)))
    if state.pending_removal:
        lines.append(f"an interrupted removal of {len(state.pending_removal)} case(s) is "
                     "pending: run `lesionmix remove-rejected` again to finish it")
    rejected = state.cases_with("reject")
    if rejected:
        lines.append(f"`lesionmix remove-rejected {review.root}` would remove: "
                     + ", ".join(rejected))
    lines += [f"note: {p}" for p in state.problems]
    return "\n".join(lines)
