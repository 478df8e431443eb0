"""``python -m napari_lesionmix.sample_data {brain,liver,all} [--out DIR] ...``."""

from napari_lesionmix.sample_data.make import main

raise SystemExit(main())
