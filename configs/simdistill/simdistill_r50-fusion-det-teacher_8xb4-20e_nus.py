# The fusion det teacher of SimDistill on nuScenes, on the student's grid:
# configs/fuller/fuller_r50-fusion-det_8xb4-20e_nus.py (camera + LiDAR,
# Fuller-det) moved from FULLER's 128 x 128 BEV over [-51.2, 51.2] m
# (0.8 m cells) to the paper's 180 x 180 BEV over [-54, 54] m (0.6 m
# cells): voxels of 0.075 m (1440 x 1440 x 41, downsampled 8x), camera
# BEV at 0.3 m downsampled 2x. Channels are unchanged (camera 80, LiDAR
# 256, fused 256), so IMD, CMD and MMD-F compare same-shaped tensors, and
# the head (200 proposals) gives the student its proposals one to one.
# Train it first: a FULLER r50 checkpoint does not fit this grid.
_base_ = ['../fuller/fuller_r50-fusion-det_8xb4-20e_nus.py']

pc_range = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
voxel_size = [0.075, 0.075, 0.2]
out_size_factor = 8  # voxel grid (1440) -> BEV feature grid (180)
bev_bound = [-54.0, 54.0, 0.3]  # 360 cells, downsampled 2x to 180

model = dict(
    data_preprocessor=dict(
        voxel_layer=dict(point_cloud_range=pc_range, voxel_size=voxel_size)),
    view_transform=dict(xbound=bev_bound, ybound=bev_bound),
    pts_middle_encoder=dict(sparse_shape=[41, 1440, 1440]),
    task_heads=dict(
        det=dict(
            point_cloud_range=pc_range,
            voxel_size=voxel_size,
            out_size_factor=out_size_factor)))
