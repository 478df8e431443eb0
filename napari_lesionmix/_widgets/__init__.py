"""LesionMix dock widgets: thin Qt views over the engine and the shared state.

- :mod:`._state`: the per-viewer :class:`LesionMixState` every dock shares
  (:func:`get_state`).
- :mod:`._base`: :class:`LesionMixDock` (layer pickers, enable logic, thread workers,
  notifications).
- one file per dock: ``case_dock``, ``likelihood_dock``, ``augment_dock``, ``synth_dock``.
"""
