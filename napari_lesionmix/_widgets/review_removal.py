"""The Review dock's *Remove rejected…*: a confirmation that names the cases, then the
same removal as ``lesionmix remove-rejected`` (see :mod:`napari_lesionmix.review.remove`)."""

from __future__ import annotations

from qtpy.QtWidgets import QMessageBox

from ..review.remove import plan_removal, remove_rejected

__all__ = ["ask_and_remove", "confirm_text", "outcome"]

#: cases named in the confirmation before "… and N more"
SHOWN = 20


def confirm_text(plan, pending: list, dataset: str, session_rows=()) -> str:
    """What the confirmation says: the cases, who rejected them and why, what changes."""
    lines = []
    for name in plan.cases:
        why = plan.why.get(name, {})
        lines.append(f"{name}: rejected by {why.get('reviewer', '?')}"
                     + (f" ({why['note']})" if why.get("note") else ""))
    text = f"Delete the files of {len(plan.cases)} rejected case(s) from {dataset}?"
    if lines:
        text += "\n\n" + "\n".join(lines[:SHOWN])
        if len(lines) > SHOWN:
            text += f"\n… and {len(lines) - SHOWN} more"
    variants = sorted(r.name for r in session_rows if r.source in plan.cases
                      and r.name not in plan.cases) if session_rows else []
    if variants:
        text += (f"\n\n{len(variants)} case(s) synthesised from a removed original stay "
                 f"({', '.join(variants[:5])}{', …' if len(variants) > 5 else ''}): they "
                 "train in every fold; reject them too to remove them.")
    if pending:
        text += (f"\n\nAn interrupted removal of {len(pending)} case(s) is finished first.")
    return text + ("\n\nTheir manifest entries move to 'removed'; numTraining and "
                   "splits_final.json are updated. This cannot be undone.")


def ask_and_remove(parent, session):
    """Ask (a modal box, Cancel by default), then remove.

    Returns
    -------
    list of RemovalResult, or None
        None when there was nothing to remove or the user cancelled.
    """
    session.refresh()  # decisions other reviewers made count too
    plan = plan_removal(session.review, session.store)
    pending = session.state.pending_removal or []
    if not plan.cases and not pending:
        return None
    box = QMessageBox(QMessageBox.Icon.Warning, "Remove rejected cases",
                      confirm_text(plan, pending, session.review.root.name,
                                   session.review.rows), parent=parent)
    box.setObjectName("confirm_removal")
    go = box.addButton(f"Remove {len(plan.cases) + len(pending)} case(s)",
                       QMessageBox.ButtonRole.DestructiveRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.exec()
    if box.clickedButton() is not go:
        return None
    return remove_rejected(session.review.root, session.store)


def outcome(results) -> str:
    """One line: the cases removed, numTraining before and after, what the split did."""
    done = [name for r in results for name in r.plan.cases]
    if not done:
        return "nothing removed"
    before, after = results[-1].num_training
    text = (f"removed {len(done)} case(s) ({', '.join(done)}); numTraining {before} → "
            f"{after}")
    splits = [r.splits for r in results if r.splits]
    return text + (f"; {splits[-1]}" if splits else "")
