# Camera-only detection student: images -> LSS -> BEV decoder -> Fuller-det.
# The plain (no distillation) baseline of the distillation example, and the
# config that loads a converted student checkpoint. It keeps the fusion
# data pipeline (points are loaded and voxelized but unused), so that it
# sees exactly the data of the distillation run.
_base_ = ['../fuller/fuller_tiny-fusion-det_1xb2-600i_synthetic-nus.py']

model = dict(
    pts_voxel_encoder=None,
    pts_middle_encoder=None,
    fuser=None,
    bev_backbone=dict(in_channels=32))
