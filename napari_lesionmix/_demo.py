"""``lesionmix demo``: napari with the brain MR sample, the LesionMix panel and the
three-plane view.

Run ``python -m napari_lesionmix._demo`` (or ``lesionmix demo``); ``--sample liver_ct``
opens the liver CT sample instead.
"""

from __future__ import annotations

import argparse

__all__ = ["main", "open_demo"]


def open_demo(viewer=None, sample: str = "brain_mr", planes: bool = True):
    """Add a sample case, the LesionMix panel and the three-plane view to ``viewer``.

    Parameters
    ----------
    viewer : napari.Viewer, optional
        Default: a new one.
    sample : {"brain_mr", "liver_ct"}
    planes : bool
        Open the three-plane view too.

    Returns
    -------
    (napari.Viewer, dict)
        The viewer and the docks by name (Case, Likelihood, Augment, Synthesise, and
        Planes when opened).
    """
    import napari

    from ._sample_data import sample_layers
    from ._widgets.panel import LesionMixPanel

    if viewer is None:
        viewer = napari.Viewer(title="LesionMix demo")
    for data, kwargs, kind in sample_layers(sample):
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    panel = LesionMixPanel(viewer)
    viewer.window.add_dock_widget(panel, name="LesionMix", area="right")
    docks = dict(panel.docks)
    if planes:
        docks["Planes"] = panel.open_planes()
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
