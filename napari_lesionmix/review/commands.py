"""The review subcommands of ``lesionmix``: ``qa``, ``qc`` and ``remove-rejected``.

:func:`add_commands` adds them to the main parser; each handler returns the exit code
(0 ok, 1 problems found, 2 bad input).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["add_commands", "COMMANDS"]

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2


def _err(msg: str) -> int:
    print(f"lesionmix: error: {msg}", file=sys.stderr, flush=True)
    return EXIT_INPUT


def add_commands(sub, formatter) -> None:
    """Add ``qa``, ``qc`` and ``remove-rejected`` to the subparsers ``sub``."""
    q = sub.add_parser(
        "qa", formatter_class=formatter, help="QA decisions of a dataset: record, summarise",
        description="Print every case of an nnU-Net raw dataset with its QA decision (accept, "
                    "reject, flag; who, when, note), the counts and the blinded-test scores. "
                    "With --accept/--reject/--flag, record decisions first (in "
                    "OUTPUT/qa/decisions/<reviewer>.json, one file per reviewer).")
    q.add_argument("output", type=Path, metavar="OUTPUT", help="dataset folder or its dataset.json")
    for d in ("accept", "reject", "flag"):
        q.add_argument(f"--{d}", nargs="+", default=[], metavar="CASE",
                       help=f"record '{d}' for these cases")
    q.add_argument("--clear", nargs="+", default=[], metavar="CASE",
                   help="withdraw your decision on these cases")
    q.add_argument("--note", default="", help="note stored with the decisions recorded now")
    q.add_argument("--reviewer", default=None,
                   help="who decides (default: $LESIONMIX_REVIEWER, else the login name)")
    q.add_argument("--json", dest="as_json", action="store_true", help="print JSON")

    c = sub.add_parser(
        "qc", formatter_class=formatter, help="QC pictures (PNG) of a dataset, no display needed",
        description="Write one PNG per case with added or removed lesions (three planes "
                    "through each, source beside result, radiological orientation) and an "
                    "overview page, without napari.")
    c.add_argument("output", type=Path, metavar="OUTPUT", help="dataset folder or its dataset.json")
    c.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="where the PNGs go (default: OUTPUT/qc)")
    c.add_argument("--cases", nargs="+", default=None, metavar="CASE",
                   help="only these cases (default: every synthesised case)")
    c.add_argument("--channel", type=int, default=0, help="image channel to draw")
    c.add_argument("--overwrite", action="store_true", help="replace existing PNGs in DIR")

    r = sub.add_parser(
        "remove-rejected", formatter_class=formatter,
        help="remove the rejected cases from a dataset, consistently",
        description="Remove every case whose current QA decision is reject: its files, its "
                    "manifest entry, numTraining in dataset.json and its entries in "
                    "splits_final.json. The plan is saved first; if interrupted, run the "
                    "command again to finish it.")
    r.add_argument("output", type=Path, metavar="OUTPUT", help="dataset folder or its dataset.json")
    r.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")


def _open(path: Path):
    from .index import ReviewDataset, ReviewError
    try:
        return ReviewDataset.open(path)
    except ReviewError as exc:
        raise SystemExit(_err(str(exc))) from None


def cmd_qa(a) -> int:
    from .blinded import BlindedSession
    from .decisions import DecisionStore, case_fingerprint, qa_folder
    from .summary import format_summary, qa_state

    review = _open(a.output)
    store = DecisionStore(review.root, a.reviewer)
    todo = [(n, d) for d in ("accept", "reject", "flag", "clear") for n in getattr(a, d)]
    unknown = [n for n, _ in todo if n not in review.names]
    if unknown:
        return _err(f"{review.root}: no case named {', '.join(unknown)} (nothing recorded)")
    for name, decision in todo:
        row = review.row(name)
        store.decide(name, decision, a.note, case_fingerprint(row.image_paths, row.label_path))
    state = qa_state(review, store)
    sessions = []
    for p in sorted((qa_folder(review.root) / "blinded").glob("*.json")):
        try:
            sessions.append(BlindedSession.load(p))
        except ValueError as exc:
            state.problems.append(str(exc))
    if a.as_json:
        print(json.dumps({
            "dataset": str(review.root), "counts": dict(state.counts()),
            "cases": [{**r.to_dict(), "decision": state.decision(r.name),
                       "history": [vars(e) for e in state.verdicts[r.name].history]
                       if r.name in state.verdicts else []} for r in review.rows],
            "removed": state.removed, "pending_removal": state.pending_removal,
            "blinded": [{"rater": s.rater, "file": str(s.path), **vars(s.score())}
                        for s in sessions],
            "problems": state.problems}, indent=1, default=str))
        return EXIT_OK
    print(format_summary(review, state))
    for s in sessions:
        print(f"blinded test {s.path.name} ({s.rater}, {s.answered}/{len(s.trials)} "
              f"answered): {s.score().verdict()}")
    return EXIT_OK


def cmd_qc(a) -> int:
    from .qc import write_qc

    review = _open(a.output)
    if a.cases:
        unknown = [n for n in a.cases if n not in review.names]
        if unknown:
            return _err(f"{review.root}: no case named {', '.join(unknown)}")
    try:
        res = write_qc(review, a.out, a.cases, a.channel, a.overwrite,
                       progress=lambda i, n: print(f"\rqc {i}/{n}", end="", file=sys.stderr))
    except FileExistsError as exc:
        return _err(str(exc))
    print(file=sys.stderr)
    for p in res.problems:
        print(f"could not draw {p}", file=sys.stderr)
    print(f"wrote {len(res.pages)} case page(s) and {len(res.overview)} overview page(s) to "
          f"{res.folder}")
    return EXIT_FAILED if res.problems else EXIT_OK


def cmd_remove_rejected(a) -> int:
    from .remove import remove_rejected

    review = _open(a.output)
    try:
        results = remove_rejected(review.root, dry_run=a.dry_run,
                                  say=lambda m: print(m, file=sys.stderr))
    except ValueError as exc:
        return _err(str(exc))
    if not results:
        print(f"{review.root}: no rejected case to remove")
    for res in results:
        plan = res.plan
        if not plan.cases:
            print(f"{review.root}: no rejected case to remove")
            continue
        for name in plan.cases:
            why = plan.why.get(name, {})
            print(f"{'would remove' if a.dry_run else 'removed'} {name}: rejected by "
                  f"{why.get('reviewer', '?')} at {why.get('time', '?')}"
                  + (f" ({why['note']})" if why.get("note") else ""))
        if a.dry_run:
            print(f"{len(plan.cases)} case(s), {len(plan.files)} file(s); nothing changed "
                  "(--dry-run)")
            continue
        before, after = res.num_training
        print(f"{'finished: ' if res.resumed else ''}{len(plan.cases)} case(s) removed, "
              f"{res.deleted} file(s) deleted; numTraining {before} -> {after}"
              + (f"; {res.splits}" if res.splits else ""))
        for w in res.warnings:
            print(f"warning: {w}", file=sys.stderr)
        if res.splits and "unchanged" not in res.splits:
            print(f"splits_final.json changed: if nnU-Net has planned this dataset, run "
                  f"`lesionmix splits {review.root} --install --overwrite` before training",
                  file=sys.stderr)
    if not a.dry_run and any(r.plan.cases for r in results):
        print(f"check it: lesionmix verify {review.root}")
    return EXIT_OK


COMMANDS = {"qa": cmd_qa, "qc": cmd_qc, "remove-rejected": cmd_remove_rejected}
