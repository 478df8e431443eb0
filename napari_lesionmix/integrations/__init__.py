"""LesionMix where models are trained: TorchIO and MONAI transforms and an nnU-Net v2
trainer, on the same engine and recipe as ``lesionmix generate``.

Each integration lives in its own module and imports its framework (torch, torchio,
monai, nnunetv2) itself, so the rest of the package never needs them. This package
imports nothing.
"""
