# A CPU-sized camera + LiDAR multi-task BEV model (Fuller-det + Fuller-seg)
# for the synthetic world. Grid: LiDAR voxels 0.4 m over [-51.2, 51.2] m,
# BEV features 64 x 64 at 1.6 m, map masks on the dataset's map grid.
# Leaf configs drop a branch or a head by setting it to None.
pc_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
voxel_size = [0.4, 0.4, 0.2]
out_size_factor = 4  # voxel grid (256) -> BEV feature grid (64)
img_input_size = [64, 192]  # (H, W) network input, as in synthetic_nus_mtl.py
map_range = [-50.0, -50.0, 50.0, 50.0]
map_resolution = 0.5
num_classes = 10
num_map_classes = 6

model = dict(
    type='MultiTaskBEVFusion',
    data_preprocessor=dict(
        type='Det3DDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=False,
        pad_size_divisor=32,
        voxel=True,
        voxel_type='hard',
        voxel_layer=dict(
            max_num_points=10,
            point_cloud_range=pc_range,
            voxel_size=voxel_size,
            max_voxels=[30000, 40000])),
    img_backbone=dict(
        type='mmdet.ResNet',
        depth=18,
        base_channels=16,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    img_neck=dict(
        type='mmdet.FPN',
        in_channels=[32, 64, 128],
        out_channels=64,
        start_level=0,
        num_outs=3),
    view_transform=dict(
        type='LSSViewTransform',
        in_channels=64,
        out_channels=32,
        image_size=img_input_size,
        feature_size=[img_input_size[0] // 8, img_input_size[1] // 8],
        xbound=[-51.2, 51.2, 0.8],
        ybound=[-51.2, 51.2, 0.8],
        zbound=[-10.0, 10.0, 20.0],
        dbound=[1.0, 52.0, 1.0],
        downsample=2),
    pts_voxel_encoder=dict(type='HardSimpleVFE', num_features=5),
    pts_middle_encoder=dict(
        type='SparseEncoder',
        in_channels=5,
        sparse_shape=[41, 256, 256],
        base_channels=16,
        output_channels=32,
        order=('conv', 'norm', 'act'),
        encoder_channels=((16, ), (32, 32), (64, 64)),
        encoder_paddings=((1, ), (1, 1), ((0, 1, 1), 1)),
        block_type='conv_module'),
    fuser=dict(
        type='ConcatConvFuser',
        in_channels=[32, 128],
        out_channels=128,
        modalities=['camera', 'lidar']),
    bev_backbone=dict(
        type='SECOND',
        in_channels=128,
        out_channels=[64, 128],
        layer_nums=[2, 2],
        layer_strides=[1, 2],
        norm_cfg=dict(type='BN', eps=1e-3, momentum=0.01),
        conv_cfg=dict(type='Conv2d', bias=False)),
    bev_neck=dict(
        type='SECONDFPN',
        in_channels=[64, 128],
        out_channels=[64, 64],
        upsample_strides=[1, 2],
        norm_cfg=dict(type='BN', eps=1e-3, momentum=0.01),
        upsample_cfg=dict(type='deconv', bias=False),
        use_conv_for_no_stride=True),
    task_heads=dict(
        det=dict(
            type='FullerDetHead',
            in_channels=128,
            num_classes=num_classes,
            hidden_channels=64,
            num_proposals=64,
            num_heads=4,
            ffn_channels=128,
            head_conv=32,
            point_cloud_range=pc_range,
            voxel_size=voxel_size,
            out_size_factor=out_size_factor),
        seg=dict(
            type='FullerSegHead',
            in_channels=128,
            num_classes=num_map_classes,
            embed_dims=64,
            num_heads=4,
            ffn_channels=128,
            bev_range=[-51.2, -51.2, 51.2, 51.2],
            map_range=map_range,
            map_resolution=map_resolution)))
