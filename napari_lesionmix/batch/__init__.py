"""Datasets in and out (nnU-Net v2 raw layout, paired folders), the runner over an
executor, resume and the manifest. Never imports napari or Qt.

Examples
--------
>>> from napari_lesionmix.batch import GenerateOptions, generate      # doctest: +SKIP
>>> summary = generate(GenerateOptions("Dataset001_MS", "out", n=100))  # doctest: +SKIP
>>> summary.exit_code                                                  # doctest: +SKIP
0
"""

from .dataset import Dataset, DatasetError, open_dataset, validate
from .export import output_name, verify_output
from .runner import GenerateOptions, RunError, RunSummary, generate

__all__ = ["Dataset", "DatasetError", "open_dataset", "validate", "output_name",
           "verify_output", "GenerateOptions", "RunError", "RunSummary", "generate"]
