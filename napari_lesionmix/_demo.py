"""``lesionmix demo``: napari with the brain MR sample and every LesionMix dock.

Run ``python -m napari_lesionmix._demo`` (or ``lesionmix demo``); ``--sample liver_ct``
opens the liver CT sample instead.
"""

from __future__ import annotations

import argparse

__all__ = ["main", "open_demo"]

DOCKS = (
    ("Case", "napari_lesionmix._widgets.case_dock", "CaseDock"),
    ("Likelihood", "napari_lesionmix._widgets.likelihood_dock", "LikelihoodDock"),
    ("Augment", "napari_lesionmix._widgets.augment_dock", "AugmentDock"),
    ("Synthesise", "napari_lesionmix._widgets.synth_dock", "SynthDock"),
)


def open_demo(viewer=None, sample: str = "brain_mr"):
    """Add a sample case and the docks to ``viewer`` (a new one if None).

    Parameters
    ----------
    viewer : napari.Viewer, optional
    sample : {"brain_mr", "liver_ct"}

    Returns
    -------
    (napari.Viewer, dict)
        The viewer and the docks by name.
    """
    import importlib

    import napari

    from ._sample_data import sample_layers

    if viewer is None:
        viewer = napari.Viewer(title="LesionMix demo")
    for data, kwargs, kind in sample_layers(sample):
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    if sample == "liver_ct":
        from ._widgets._state import get_state

        get_state(viewer).update_recipe(lesion_classes=[2], organ_label=1)
    docks = {}
    for i, (name, module, cls) in enumerate(DOCKS):
        widget = getattr(importlib.import_module(module), cls)(viewer)
        dw = viewer.window.add_dock_widget(widget, name=name, area="right",
                                           tabify=i > 0)
        docks[name] = widget
        del dw
    return viewer, docks


def main(argv=None) -> int:
    """Open napari with a sample case and the LesionMix docks; run the event loop.

    ``lesionmix demo`` calls ``main()`` after its own parser has read ``sys.argv``, so
    ``argv=None`` means *no options* (not ``sys.argv``, which holds ``demo``).

    Parameters
    ----------
    argv : list of str, optional
        ``[--sample brain_mr|liver_ct]``; None = no options.

    Returns
    -------
    int
        0.
    """
    parser = argparse.ArgumentParser(prog="lesionmix demo", description=__doc__.splitlines()[0])
    parser.add_argument("--sample", default="brain_mr", choices=("brain_mr", "liver_ct"))
    args = parser.parse_args([] if argv is None else list(argv))
    import napari

    open_demo(sample=args.sample)
    napari.run()
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
