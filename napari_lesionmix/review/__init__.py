"""Visual QA of a dataset: the review model, decisions, QC pictures and the blinded test.

Everything here is Qt-free and napari-free (like ``core/`` and ``batch/``): the Review
dock is a view over these objects, and ``lesionmix qa``, ``lesionmix qc`` and
``lesionmix remove-rejected`` run them without a display.

- :mod:`.index`: open an nnU-Net v2 raw dataset for review; the case index; one case
  (result, source, what changed) loaded at a time.
- :mod:`.changes`: lesions by origin (kept, added, removed) and the difference map.
- :mod:`.decisions`: accept / reject / flag with a note, one file per reviewer.
- :mod:`.remove`: remove rejected cases consistently, resumable after an interruption.
- :mod:`.blinded`: the blinded real-or-synthetic test and its score.
- :mod:`.orient`, :mod:`.sheet`, :mod:`.qc`: radiological slices and the QC pictures.
- :mod:`.summary`, :mod:`.commands`: the QA state and the ``lesionmix`` subcommands.

Import each name from its module, e.g.
``from napari_lesionmix.review.index import ReviewDataset``.
"""
