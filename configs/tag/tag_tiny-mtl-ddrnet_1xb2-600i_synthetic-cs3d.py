# Table II baseline "MTL DDRNet" on the synthetic world (CPU size): the
# multi-task model without TAG with mmsegmentation's DDRNet as the image
# backbone (base width 16: the fused output h has 4 * 16 = 64 channels at
# 1/8, the heads' width) and the same three heads, schedule and data as the
# other tiny TAG configs. Needs mmsegmentation (1.2.2, with ftfy, regex
# and prettytable); see MMSegBackboneAdapter.
_base_ = ['./tag_tiny-mtl-tag_1xb2-600i_synthetic-cs3d.py']

ddrnet_channels = 16

model = dict(
    backbone=dict(
        _delete_=True,
        type='MMSegBackboneAdapter',
        backbone=dict(
            type='DDRNet',
            in_channels=3,
            channels=ddrnet_channels,
            ppm_channels=32,
            align_corners=False,
            norm_cfg=dict(type='BN', requires_grad=True),
            init_cfg=None),
        # x_semantic: the 1/64 context branch (16 * c channels), x_detail:
        # the 1/8 spatial branch (4 * c channels)
        semantic_module='context_branch_layers.2',
        detail_module='spatial_branch_layers.2'),
    task_attention=None)
