# A CPU-sized camera + LiDAR multi-task BEV model (Fuller-det + Fuller-seg)
# for the synthetic world: the r50 model with every stage made smaller.
# Camera: ResNet-18 at 1/4 width + FPN + LSS without LiDAR depth (32 ch);
# LiDAR: a 3-stage SparseEncoder (128 ch). Grid: LiDAR voxels 0.4 m over
# [-51.2, 51.2] m, BEV features 64 x 64 at 1.6 m, map masks on the dataset's
# map grid (as r50; Fuller-seg decodes on 63 x 63 cells over the map extent,
# 32 x 32 pooled tokens, inherited). Leaf configs drop a branch or a head by
# setting it to None.
_base_ = ['./fuller_bevfusion_r50.py']

voxel_size = [0.4, 0.4, 0.2]
out_size_factor = 4  # voxel grid (256) -> BEV feature grid (64)
img_input_size = [64, 192]  # (H, W) network input, as in synthetic_nus_mtl.py

model = dict(
    data_preprocessor=dict(
        voxel_layer=dict(voxel_size=voxel_size, max_voxels=[30000, 40000])),
    img_backbone=dict(depth=18, base_channels=16),
    img_neck=dict(in_channels=[32, 64, 128], out_channels=64),
    view_transform=dict(
        type='LSSViewTransform',
        in_channels=64,
        out_channels=32,
        image_size=img_input_size,
        feature_size=[img_input_size[0] // 8, img_input_size[1] // 8],
        xbound=[-51.2, 51.2, 0.8],
        ybound=[-51.2, 51.2, 0.8],
        dbound=[1.0, 52.0, 1.0]),
    pts_middle_encoder=dict(
        sparse_shape=[41, 256, 256],
        base_channels=16,
        output_channels=32,
        encoder_channels=((16, ), (32, 32), (64, 64)),
        encoder_paddings=((1, ), (1, 1), ((0, 1, 1), 1)),
        block_type='conv_module'),
    fuser=dict(in_channels=[32, 128], out_channels=128, num_convs=1),
    bev_backbone=dict(
        in_channels=128, out_channels=[64, 128], layer_nums=[2, 2]),
    bev_neck=dict(in_channels=[64, 128], out_channels=[64, 64]),
    task_heads=dict(
        det=dict(
            in_channels=128,
            hidden_channels=64,
            num_proposals=64,
            num_heads=4,
            ffn_channels=128,
            head_conv=32,
            voxel_size=voxel_size,
            out_size_factor=out_size_factor),
        seg=dict(
            in_channels=128, embed_dims=64, num_heads=4, ffn_channels=128)))
