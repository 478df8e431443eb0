"""The LesionMix engine: numpy, scipy, SimpleITK and OpenCV only (no napari, no Qt)."""
