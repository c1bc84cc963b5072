# Multi-task baseline with the cross-modal attention fuser on nuScenes: the
# FULLER r50 multi-task model (FULLER settings: same data, schedule, heads)
# with ConcatConvFuser replaced by CrossModalAttentionFuser.
_base_ = ['../fuller/fuller_r50-fusion-mtl_8xb4-20e_nus.py']

model = dict(
    fuser=dict(
        _delete_=True,
        type='CrossModalAttentionFuser',
        in_channels=[80, 256],
        out_channels=256,
        modalities=['camera', 'lidar'],
        embed_dims=128,
        num_heads=4,
        window_size=8,
        num_scales=3))
