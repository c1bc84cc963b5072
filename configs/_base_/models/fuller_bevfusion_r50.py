# nuScenes-size camera + LiDAR multi-task BEV model (FULLER's multi-task
# setting: voxel 0.1 m over [-51.2, 51.2] m). Camera: ResNet-50 + FPN + LSS
# (80 ch); LiDAR: SparseEncoder (256 ch); BEV 128 x 128 at 0.8 m (even, so
# the decoder's stride-2 branch upsamples back to the same size); map masks
# 200 x 200 at 0.5 m (Fuller-seg decodes at the BEV cell size and upsamples
# its logits to them). The image backbone starts from random weights unless
# ImageNet weights are supplied (nothing is downloaded), e.g.
#   --cfg-options model.img_backbone.init_cfg.type=Pretrained \
#                 model.img_backbone.init_cfg.checkpoint=/path/resnet50.pth
pc_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
voxel_size = [0.1, 0.1, 0.2]
out_size_factor = 8  # voxel grid (1024) -> BEV feature grid (128)
img_input_size = [256, 704]  # (H, W), as in nuscenes_mtl.py
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
            max_voxels=[120000, 160000])),
    img_backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    img_neck=dict(
        type='mmdet.FPN',
        in_channels=[512, 1024, 2048],
        out_channels=256,
        start_level=0,
        num_outs=3),
    view_transform=dict(
        type='DepthLSSViewTransform',
        in_channels=256,
        out_channels=80,
        image_size=img_input_size,
        feature_size=[img_input_size[0] // 8, img_input_size[1] // 8],
        xbound=[-51.2, 51.2, 0.4],
        ybound=[-51.2, 51.2, 0.4],
        zbound=[-10.0, 10.0, 20.0],
        dbound=[1.0, 60.0, 0.5],
        downsample=2),
    pts_voxel_encoder=dict(type='HardSimpleVFE', num_features=5),
    pts_middle_encoder=dict(
        type='SparseEncoder',
        in_channels=5,
        sparse_shape=[41, 1024, 1024],
        output_channels=128,
        order=('conv', 'norm', 'act'),
        encoder_channels=((16, 16, 32), (32, 32, 64), (64, 64, 128),
                          (128, 128)),
        encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, [0, 1, 1]), (0, 0)),
        block_type='basicblock'),
    fuser=dict(
        type='ConcatConvFuser',
        in_channels=[80, 256],
        out_channels=256,
        modalities=['camera', 'lidar'],
        num_convs=2),
    bev_backbone=dict(
        type='SECOND',
        in_channels=256,
        out_channels=[128, 256],
        layer_nums=[5, 5],
        layer_strides=[1, 2],
        norm_cfg=dict(type='BN', eps=1e-3, momentum=0.01),
        conv_cfg=dict(type='Conv2d', bias=False)),
    bev_neck=dict(
        type='SECONDFPN',
        in_channels=[128, 256],
        out_channels=[256, 256],
        upsample_strides=[1, 2],
        norm_cfg=dict(type='BN', eps=1e-3, momentum=0.01),
        upsample_cfg=dict(type='deconv', bias=False),
        use_conv_for_no_stride=True),
    task_heads=dict(
        det=dict(
            type='FullerDetHead',
            in_channels=512,
            num_classes=num_classes,
            num_proposals=200,
            point_cloud_range=pc_range,
            voxel_size=voxel_size,
            out_size_factor=out_size_factor),
        seg=dict(
            type='FullerSegHead',
            in_channels=512,
            num_classes=num_map_classes,
            bev_range=[-51.2, -51.2, 51.2, 51.2],
            map_range=map_range,
            map_resolution=map_resolution,
            # F and the masks at the BEV cell size (125 x 125 here), keys
            # pooled to 32 x 32 tokens, logits upsampled to the map grid;
            # decode_at='map', token_pool=None is the map-grid head
            decode_at='bev',
            token_pool=32)))
