"""Necks.

The camera branch reuses mmdet's ``FPN`` as its neck (no camera neck of our
own is needed): ResNet ``out_indices=(1, 2, 3)`` -> ``FPN(in_channels=[512,
1024, 2048], out_channels=256, num_outs=3)``; the detector feeds the first
(stride 8) output, reshaped to (B, N, C, H, W), to the LSS view transform
(see ``tests/models/necks/test_camera_fpn_to_view_transform.py``). The LiDAR
BEV decoder reuses mmdet3d's ``SECOND`` + ``SECONDFPN``.
"""
