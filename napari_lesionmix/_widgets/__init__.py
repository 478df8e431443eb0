"""LesionMix dock widgets: thin Qt views over the viewer's edit session.

- :mod:`.viewer_link`: one :class:`~napari_lesionmix.session.EditSession` per viewer
  (:func:`get_link`) and what ties it to the viewer: the chosen layers
  (:mod:`.layer_link`, :mod:`.case_from_layers`), the preview's layers
  (:mod:`.preview_layers`), the heatmap (:mod:`.heatmap`), clicks and marks
  (:mod:`.canvas`), orientation letters (:mod:`.orientation`).
- :mod:`._base`: :class:`LesionMixDock` (idle banner, enable logic, thread workers).
- one file per dock: ``case_dock``, ``likelihood_dock``, ``augment_dock``,
  ``synth_dock``, ``planes`` (the three-plane view); ``panel`` holds them as one tabbed
  panel.
"""
