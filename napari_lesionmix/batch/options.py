"""What a run is: its options, its plan, how it ended, and the recipe it runs.

Shared by ``lesionmix generate`` and the napari plugin's Export (see :mod:`.runner`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..core.recipe import Recipe, RecipeError
from .dataset import SourceCase
from .exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED
from .layout import MAX_N
from .memory import MemorySource

__all__ = ["GenerateOptions", "Plan", "RunError", "RunSummary", "check_options",
           "default_workers", "load_recipe"]


class RunError(Exception):
    """The run cannot start (bad input, bad options, OUTPUT in the way). Exit code 2.
    Nothing has been written or deleted."""


@dataclass
class GenerateOptions:
    """Options of a run (``lesionmix generate --help`` describes each).

    ``input`` is a dataset folder or a :class:`MemorySource`; ``recipe`` a recipe file,
    a :class:`Recipe` or None (the defaults).
    """

    input: Path | MemorySource
    output: Path
    n: int
    recipe: Path | Recipe | None = None
    seed: int | None = None
    workers: int = 1
    scheduler: str | None = None
    resume: bool = False
    overwrite: bool = False
    originals: bool = True
    compression: int | None = None
    skip_bad: bool = False
    progress: bool = True


@dataclass
class RunSummary:
    """How the run ended.

    Attributes
    ----------
    names : list of str
        Complete synthesised cases in output order (this run's and reused ones).
    unchanged : list of str
        Complete cases equal to their source (no voxel changed); ``notes`` says why.
    notes : list of str
        What the run could not do, in words (also printed and in the manifest).
    state : str
        The manifest's final state: complete, incomplete or interrupted.
    setup_seconds : float
        The one-off pass over the input (checks, bank, map).
    terminated : bool
        The run was stopped by SIGTERM (exit code 143; else Ctrl-C's 130).
    stopped : str
        Why the run stopped early on its own (OUTPUT could not be written: no space
        left, ...); empty otherwise. Exit code 1; ``--resume`` completes the run.
    """

    planned: int = 0
    written: int = 0
    reused: int = 0
    failed: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    originals: int = 0
    interrupted: bool = False
    seconds: float = 0.0
    output: Path | None = None
    names: list = field(default_factory=list)
    unchanged: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    state: str = "running"
    setup_seconds: float = 0.0
    stopped: str = ""
    terminated: bool = False

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_TERMINATED if self.terminated else EXIT_INTERRUPTED
        if self.stopped:
            return EXIT_FAILED
        return EXIT_OK if self.written + self.reused == self.planned and not self.failed \
            else EXIT_FAILED

    def line(self) -> str:
        """One line: how many cases, failures, unchanged cases, time and where."""
        done = self.written + self.reused
        parts = [f"{done}/{self.planned} synthesised cases complete"]
        if self.reused:
            parts.append(f"{self.reused} from the previous run")
        if self.originals:
            parts.append(f"{self.originals} originals")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.unchanged:
            parts.append(f"{len(self.unchanged)} equal to their source (no voxel changed)")
        if self.skipped:
            parts.append(f"{len(self.skipped)} bad input case(s) skipped: "
                         + ", ".join(b["case"] for b in self.skipped))
        rate = self.written / self.seconds if self.seconds > 0 else 0.0
        parts.append(f"{self.seconds:.1f} s ({rate:.2f} cases/s)")
        state = "interrupted" if self.interrupted else "stopped" if self.stopped else (
            "done" if self.exit_code == 0 else "incomplete")
        line = f"{state}: " + ", ".join(parts) + f" -> {self.output}"
        if self.stopped and not self.interrupted:
            line += ("; OUTPUT could not be written (see above): make room or fix it, then "
                     "run again with --resume")
        return line


@dataclass
class Plan:
    """Which source and seed each output case takes, and what the manifest records."""

    names: list[str]
    sources: list[SourceCase]
    seeds: list
    data: dict


def load_recipe(recipe: Path | Recipe | None, seed: int | None) -> Recipe:
    """The recipe (a file, a Recipe or the defaults), with the seed overridden if given."""
    try:
        if isinstance(recipe, Recipe):
            out = recipe
        else:
            out = Recipe.from_json(recipe) if recipe is not None else Recipe()
        if seed is not None:
            out = out.replace(seed=int(seed))
    except RecipeError as exc:
        raise RunError(f"recipe: {exc}") from None
    return out


def check_options(opts: GenerateOptions) -> None:
    """RunError for options that cannot work together."""
    if opts.n < 1:
        raise RunError(f"--n must be at least 1, got {opts.n}")
    if opts.n > MAX_N:
        raise RunError(f"--n must be at most {MAX_N:,}, got {opts.n:,} (every case is planned "
                       "up front; make a bigger dataset in several runs with other seeds)")
    if opts.resume and opts.overwrite:
        raise RunError("--resume and --overwrite exclude each other")
    if opts.compression is not None and not 1 <= opts.compression <= 9:
        raise RunError(f"--compression must be 1..9, got {opts.compression}")
    if opts.workers < 1:
        raise RunError(f"--workers must be at least 1, got {opts.workers}")



def default_workers() -> int:
    """The machine's cores (``os.cpu_count()``; at least 1)."""
    return max(os.cpu_count() or 1, 1)

