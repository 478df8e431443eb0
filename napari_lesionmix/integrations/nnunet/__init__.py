"""LesionMix in nnU-Net v2's training: the trainer ``nnUNetTrainerLesionMix`` (module
``trainer``), its transform and data loader (``transform``), the fold's bank and map
(``fold``) and the shim that makes nnU-Net find the trainer (``install``). Imports nothing.
"""
