"""Datasets in and out (nnU-Net v2 raw layout, paired folders), the runner over an
executor, resume and the manifest. Never imports napari or Qt.

Each name is imported from its own module (this file re-exports nothing); the public
names are also in :mod:`napari_lesionmix`.

Examples
--------
>>> from napari_lesionmix import GenerateOptions, generate                  # doctest: +SKIP
>>> summary = generate(GenerateOptions("Dataset001_MS", "out", n=100))    # doctest: +SKIP
>>> summary.exit_code                                                      # doctest: +SKIP
0
"""
