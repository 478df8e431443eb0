"""Why synthesised cases came out equal to their sources: the likely cause, in words.

A synthesised case equals its source (no voxel changed) exactly when the loop accepted
no operation. That is legitimate for one case now and then (its target fell within the
tolerance of its own load), but when it happens to many cases the run is probably not
doing what the user meant, and the summary says why.
"""

from __future__ import annotations

from collections import Counter

__all__ = ["LESION_WORDS", "ORGAN_WORDS", "organ_like_classes", "unchanged_cause"]

#: words in a label's name that say it is an organ or a tissue, not a lesion
ORGAN_WORDS = ("liver", "kidney", "pancreas", "spleen", "lung", "brain", "heart", "prostate",
               "organ", "colon", "bladder", "stomach", "bone", "body", "muscle", "vessel",
               "ventricle", "skull", "bowel", "breast", "thyroid")
#: words that say a label is a lesion even when it names an organ ("liver tumour")
LESION_WORDS = ("lesion", "tumo", "metast", "hyperintens", "cyst", "nodule", "cancer",
                "infarct", "edema", "oedema", "necro", "enhanc", "mass", "plaque")


def organ_like_classes(labels: dict | None, classes) -> list[tuple[str, int]]:
    """The lesion classes whose dataset.json name reads like an organ: ``[(name, value)]``.

    Examples
    --------
    >>> organ_like_classes({"background": 0, "liver": 1, "tumour": 2}, [1, 2])
    [('liver', 1)]
    """
    if not labels:
        return []
    wanted = {int(c) for c in classes or ()}
    return [(name, int(v)) for name, v in labels.items()
            if int(v) in wanted and any(w in name.lower() for w in ORGAN_WORDS)
            and not any(w in name.lower() for w in LESION_WORDS)]


def unchanged_cause(entries: list[dict], recipe, labels: dict | None, reference) -> str:
    """The likely reason why the cases of ``entries`` equal their sources.

    Parameters
    ----------
    entries : list of dict
        Manifest entries of the unchanged cases (target, start load, tolerance,
        direction, synthesis status, most common refusal).
    recipe : Recipe
        The run's recipe (lesion classes resolved).
    labels : dict or None
        dataset.json's labels (name → value).
    reference : sequence of float
        The reference loads (mm³).
    """
    organ_like = organ_like_classes(labels, recipe.lesion_classes)
    if organ_like and recipe.organ_label is None:
        name, value = organ_like[0]
        others = [c for c in recipe.lesion_classes if c != value]
        return (f"label {value} ({name!r}) counts as a lesion class because no organ_label is "
                "set, so the lesion load is mostly the organ's volume and no lesion fits the "
                f"target band; set \"organ_label\": {value} in the recipe"
                + (f" and \"lesion_classes\": {others}" if others else ""))
    flat = [e for e in entries
            if abs(e.get("target_load_mm3", 0) - e.get("start_load_mm3", 0))
            <= e.get("tolerance_mm3", 0)]
    if len(flat) == len(entries):
        distinct = sorted({round(float(v), 6) for v in reference})
        why = "their target loads equal their starting loads within the tolerance"
        if recipe.load_distribution in ("real", "low", "medium", "high") and len(distinct) <= 1:
            why += (f"; load_distribution {recipe.load_distribution!r} draws from the reference "
                    f"loads, which hold one value ({distinct[0] / 1000 if distinct else 0:.3f} ml"
                    ", e.g. a one-case input: every target is the case's own load); choose "
                    "'uniform' with lo/hi, 'gaussian' or 'fixed', or give load.reference")
        elif recipe.load_distribution == "fixed":
            why += "; the 'fixed' load equals the cases' own loads"
        return why
    kinds = Counter(e.get("direction", "") for e in entries)
    refusals = Counter(e.get("refusal", "") for e in entries if e.get("refusal"))
    top = refusals.most_common(1)[0][0] if refusals else ""
    if kinds.get("populate", 0) >= kinds.get("inpaint", 0):
        hint = ""
        if "inside the allowed region" in top:
            hint = ("; the allowed region (foreground, organ_label or placement mask) is "
                    "too small or misses where the map puts lesions")
        elif "touches an existing lesion" in top:
            hint = "; lower populate.min_gap or use fewer, smaller lesions"
        elif "overshoot" in top:
            hint = ("; every bank lesion is larger than the gap to the target: raise the "
                    "tolerance or lower populate.scale")
        elif "bank" in top or not top:
            hint = "; check that the input has lesions of the lesion classes"
        return f"no lesion could be added (most common refusal: {top or 'none recorded'}){hint}"
    return ("no lesion could be removed without taking the load past the target band (the "
            "lesions are large for the tolerance); raise the tolerance")
