# FULLER with a task-adaptive attention generator (TAG) between the shared BEV
# decoder and the heads: each head gets alpha_t * h + beta, with h the
# decoder output (SECONDFPN's two 64-channel levels concatenated), alpha_t a
# per-task channel attention from SECOND's deepest stage (128 channels) and
# beta a shared spatial map from the fused BEV (the decoder's input, 128
# channels). Calibration as in the -calib config: the last shared layer is
# still SECONDFPN's deblocks (TAG's beta conv is shared as well, but sits
# after the layer whose gradients IMTL-G compares).
_base_ = ['./fuller_tiny-fusion-mtl-calib_1xb2-600i_synthetic-nus.py']

model = dict(
    task_attention=dict(
        type='TaskAdaptiveAttentionGenerator',
        tasks=['det', 'seg'],
        in_channels=128,
        semantic_channels=128,
        detail_channels=128))
