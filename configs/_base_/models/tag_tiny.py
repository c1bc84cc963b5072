# A CPU-sized TAG model for the synthetic world: the two-pathway backbone of
# Table I with every width made smaller (output h: 64 channels at 1/8), TAG
# (MLP hidden 128 // 4 = 32, 3x3 dilation-2 spatial beta) and the three
# heads (CRC width 64): mono 3D detection (8 Cityscapes-3D classes),
# semantic segmentation (19 train ids) and dense depth, loss weights
# 1 / 100 / 1 (the heads' defaults). Variants in leaf configs:
#   without TAG:    model = dict(task_attention=None)
#   single task:    model = dict(task_attention=None, task_heads=dict(
#                       _delete_=True, seg=dict(type='ImageSegHead', ...)))
#   Table III rows: model = dict(backbone=dict(detail_branch=False)),
#                   model = dict(backbone=dict(aggregation='ppm')),
#                   model = dict(task_attention=dict(use_alpha=False)),
#                   model = dict(task_attention=dict(use_beta=False))
feat_channels = 64  # h, the task features and the heads' CRC width
semantic_channels = (64, 96, 128)
detail_channels = 32

model = dict(
    type='TAGMultiTaskDetector',
    data_preprocessor=dict(
        type='Det3DDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=64),
    backbone=dict(
        type='TwoPathwayNet',
        stem_channels=16,
        layer1_channels=16,
        layer1_blocks=1,
        layer2_channels=32,
        layer2_blocks=1,
        semantic_channels=semantic_channels,
        semantic_blocks=1,
        detail_channels=detail_channels,
        detail_blocks=1,
        decode_channels=(96, feat_channels)),
    task_attention=dict(
        type='TaskAdaptiveAttentionGenerator',
        in_channels=feat_channels,
        semantic_channels=semantic_channels[-1],
        detail_channels=detail_channels),
    task_heads=dict(
        det=dict(
            type='CenterMono3DHead',
            in_channels=feat_channels,
            feat_channels=feat_channels,
            num_classes=8,
            stride=8,
            # keep the 50 best boxes whatever their score: the Detection
            # Score sweeps its own confidence thresholds, and an early or
            # small model's scores all lie below the head's default 0.1
            test_cfg=dict(score_thr=0.0)),
        seg=dict(
            type='ImageSegHead',
            in_channels=feat_channels,
            channels=feat_channels,
            num_classes=19),
        depth=dict(
            type='DenseDepthHead',
            in_channels=feat_channels,
            channels=feat_channels)))
