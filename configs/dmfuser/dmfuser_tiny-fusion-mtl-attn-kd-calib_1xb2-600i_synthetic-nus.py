# DMFuser distillation + FULLER calibration (the combination none of the
# two methods has alone): the distilled attention-fuser student, its task
# losses weighted by IMTL-G at the last shared layer and its fuser inputs
# gated by modality; the distillation losses ('distill.*') are added
# unweighted. Module paths are the student's inside the algorithm.
_base_ = [
    './dmfuser_tiny-fusion-mtl-attn-kd_1xb2-600i_synthetic-nus.py',
    '../_base_/fuller_calibration.py'
]

optim_wrapper = dict(
    type='FullerOptimWrapper',
    calibration=dict(
        _base_.fuller_calibration,
        shared_layer='student.bev_neck.deblocks',
        fuser='student.fuser',
        intra_layer=None,
        heads=['student.task_heads.det', 'student.task_heads.seg']))
