"""Helpers of the review tests."""

from __future__ import annotations

from pathlib import Path

from napari_lesionmix.cli import main
from napari_lesionmix.sample_data import sample_dir

BRAIN = sample_dir("brain_mr")


def generate(out: Path, *extra: str, n: int = 6, source: Path = BRAIN) -> Path:
    """``lesionmix generate SOURCE OUT --n N`` with the sample's recipe, in this process."""
    code = main(["generate", str(source), str(out), "--n", str(n), "--workers", "1",
                 "--no-progress", "--recipe", str(source / "lesionmix_recipe.json"), *extra])
    assert code == 0, f"lesionmix generate failed with exit code {code}"
    return out
