"""The worked example's distillation config on the real tiny models: a
training step on two synthetic-world samples records the real modules
(bev_neck, the det head and its GT heatmap builder), gives the student's
task losses plus distill.loss_bev / distill.loss_heatmap, and leaves the
LiDAR teacher untouched."""
import os.path as osp

import torch
from mmdet3d.registry import DATASETS, MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper

from mtl_fusion.utils import replace_data_root

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
KD_CFG = osp.join(REPO, 'configs', 'distill',
                  'kd_tiny-lidar-det-to-cam-det_1xb2-600i_synthetic-nus.py')


def test_kd_config_trains_on_the_synthetic_world(synthetic_nuscenes,
                                                 tmp_path, seed):
    cfg = Config.fromfile(KD_CFG)
    replace_data_root(cfg, synthetic_nuscenes)
    teacher_cfg = Config.fromfile(cfg.model.teachers.lidar.config).model
    teacher = MODELS.build(teacher_cfg)
    ckpt = str(tmp_path / 'lidar.pth')
    torch.save(dict(state_dict=teacher.state_dict()), ckpt)
    cfg.model.teachers.lidar.checkpoint = ckpt

    model = MODELS.build(cfg.model)
    model.init_weights()
    assert not model.student.with_lidar and model.teachers['lidar'].with_lidar
    before = {k: v.clone()
              for k, v in model.teachers['lidar'].state_dict().items()}

    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = pseudo_collate([dataset[0], dataset[1]])
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    model.train()
    log = model.train_step(batch, optim_wrapper=optim)
    assert {'det.loss_heatmap', 'det.loss_cls', 'det.loss_bbox',
            'distill.loss_bev', 'distill.loss_heatmap'} <= set(log)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in log.values())
    assert log['distill.loss_bev'] > 0 and log['distill.loss_heatmap'] > 0
    for key, value in model.teachers['lidar'].state_dict().items():
        assert torch.equal(value, before[key]), key
