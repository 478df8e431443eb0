"""Helpers of the review tests."""

from __future__ import annotations

from pathlib import Path

from napari_lesionmix.cli import main
from napari_lesionmix.sample_data import sample_dir

BRAIN = sample_dir("brain_mr")


def generate(out: Path, *extra: str, n: int = 6, source: Path = BRAIN,
             recipe: Path | None | str = "dataset") -> Path:
    """``lesionmix generate SOURCE OUT --n N`` in this process, with the source's
    ``lesionmix_recipe.json`` (or ``recipe``; None: the built-in recipe)."""
    if recipe == "dataset":
        recipe = source / "lesionmix_recipe.json"
    opts = ["--recipe", str(recipe)] if recipe is not None else []
    code = main(["generate", str(source), str(out), "--n", str(n), "--workers", "1",
                 "--no-progress", *opts, *extra])
    assert code == 0, f"lesionmix generate failed with exit code {code}"
    return out
