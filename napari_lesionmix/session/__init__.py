"""The edit session behind the napari docks: a model with no napari and no Qt.

One :class:`EditSession` holds what a person editing one case works with: the case, the
recipe, the lesions and the selected one, the likelihood map, the location where a
lesion goes, the preview (an :class:`~napari_lesionmix.core.edits.Edit` that is shown
but never written into the case) and the undo history of applied changes. It tells its
views what changed through psygnal signals.

The docks in :mod:`napari_lesionmix._widgets` are views over it: they build widgets and
connect them to the session; the layers of a napari viewer are synchronised with it
there too. Like ``core/`` and ``batch/``, this package imports neither napari nor Qt, so
its tests run without a display.

- :mod:`.session`: :class:`EditSession`, built of :mod:`.recipes` (setting, editing and
  adopting the recipe; which one a session adopts when a dataset brings its own) and
  :mod:`.history` (the preview, Apply, Undo, Reset; :class:`Change`).
- :mod:`.augment`: computing add and remove previews and sampling a location, with the
  engine's functions; which exact values the batch ranges would never draw.
- :mod:`.errors`: :class:`SessionError`.

Every name is imported from the module that defines it (``napari_lesionmix.session.
session.EditSession``, ...); this package's ``__init__`` imports nothing.
"""
