"""mtl_fusion and mmdet3d 1.4's ``projects/`` in one process.

mmdet3d's projects (BEVFusion, DETR3D, PETR, ...) register their classes
into mmdet3d's registries; a second registration of a name raises a
KeyError. ``tests/data/mmdet3d-1.4-projects-registered-names.txt`` lists every
name registered under ``projects/`` at the v1.4.0 tag. In one fresh process,
the test registers a dummy class under each of those names into every
mmdet3d registry, then imports mtl_fusion (which must not collide), builds
the tiny FULLER model from its config and runs one training forward.

The same process checks that no name mtl_fusion adds is already registered
by mmdet3d, mmdet or mmengine themselves: such a name would not raise, but
would shadow (or be shadowed by) the upstream class depending on the scope.
"""
import json
import os
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
NAMES = osp.join(REPO, 'tests', 'data',
                 'mmdet3d-1.4-projects-registered-names.txt')
CONFIG = osp.join(REPO, 'configs', 'fuller',
                  'fuller_tiny-fusion-mtl_1xb2-600i_synthetic-nus.py')

SCRIPT = r'''
import json, sys
import mmdet3d.registry as mmdet3d_registry
import mmdet.registry as mmdet_registry
from mmengine.registry import Registry
from mmdet.utils import register_all_modules as register_mmdet
from mmdet3d.utils import register_all_modules as register_mmdet3d

names_file, config = sys.argv[1], sys.argv[2]
# every upstream module imported, so that the registries are complete
register_mmdet(init_default_scope=False)
register_mmdet3d(init_default_scope=True)
registries = {k: v for k, v in vars(mmdet3d_registry).items()
              if isinstance(v, Registry)}
mmdet_by_name = {v.name: v for v in vars(mmdet_registry).values()
                 if isinstance(v, Registry)}
before = {k: set(r.module_dict) for k, r in registries.items()}

names = [line.strip() for line in open(names_file)
         if line.strip() and not line.startswith('#')]
dummies = {}
for key, registry in registries.items():
    for name in names:
        if name in registry.module_dict:  # mmdet3d core has it here
            continue
        registry.register_module(name=name, module=type(name, (), {}))
        dummies.setdefault(key, set()).add(name)

import mtl_fusion  # must not raise a KeyError

ours = {}
shadowing = []
for key, registry in registries.items():
    added = set(registry.module_dict) - before[key] - dummies.get(key, set())
    ours[key] = sorted(added)
    upstream = [registry.parent] if registry.parent is not None else []
    if registry.name in mmdet_by_name:
        upstream.append(mmdet_by_name[registry.name])
    for name in added:
        for other in upstream:
            if name in other.module_dict:
                shadowing.append(f'{key}:{name} (also in {other.scope})')

import torch
from mmengine.config import Config
from mmdet3d.registry import MODELS
from mtl_fusion.benchmark import random_batch

cfg = Config.fromfile(config)
torch.manual_seed(0)
model = MODELS.build(cfg.model)
model.init_weights()
model.train()
batch = random_batch(cfg, batch_size=1, seed=0, num_points=2000)
data = model.data_preprocessor(batch, training=True)
losses = model(**data, mode='loss')
total, log_vars = model.parse_losses(losses)
total.backward()
print('RESULT ' + json.dumps(dict(
    num_dummies=sum(len(v) for v in dummies.values()),
    ours=ours, shadowing=sorted(shadowing),
    loss_keys=sorted(log_vars), loss=float(total))))
'''


def test_projects_names_and_mtl_fusion_in_one_process(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    # this checkout's mtl_fusion, as for the rest of the suite
    env['PYTHONPATH'] = os.pathsep.join(
        [REPO] + [p for p in [env.get('PYTHONPATH')] if p])
    proc = subprocess.run(
        [sys.executable, '-c', SCRIPT, NAMES, CONFIG],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith('RESULT ')]
    result = json.loads(line[-1][len('RESULT '):])

    names = [x.strip() for x in open(NAMES)
             if x.strip() and not x.startswith('#')]
    assert len(names) == 89
    # each name went into every mmdet3d registry that lacked it
    assert result['num_dummies'] > len(names)
    assert result['shadowing'] == []
    ours = {name for names_ in result['ours'].values() for name in names_}
    assert not ours & set(names)
    # what mtl_fusion registers, as a sanity check of the diff
    assert {'MultiTaskBEVFusion', 'ConcatConvFuser', 'LSSViewTransform',
            'DepthLSSViewTransform', 'FullerDetHead', 'FullerSegHead',
            'QueryHungarianAssigner3D', 'RotatedIoU3DCost'} <= ours
    assert {'MultiTaskNuScenesDataset', 'PackMultiTaskInputs',
            'MultiTaskMetric'} <= ours
    assert any(k.startswith('det.') for k in result['loss_keys'])
    assert any(k.startswith('seg.') for k in result['loss_keys'])
    assert result['loss'] > 0
