# Multi-task baseline with the cross-modal attention fuser on the synthetic
# world: the FULLER tiny multi-task model (Fuller-det + Fuller-seg, losses
# summed 1:1) with ConcatConvFuser replaced by CrossModalAttentionFuser.
_base_ = ['../fuller/fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py']

model = dict(
    fuser=dict(
        _delete_=True,
        type='CrossModalAttentionFuser',
        in_channels=[32, 128],
        out_channels=128,
        modalities=['camera', 'lidar'],
        embed_dims=64,
        num_heads=4,
        window_size=8,
        num_scales=3))
