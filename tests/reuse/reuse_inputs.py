"""Tiny synthetic LiDAR batches and a tiny CenterPoint geometry for the
reuse tests (a user's config outside the repository)."""
import textwrap

import torch
from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
from mmengine.structures import InstanceData

# CPU-sized CenterPoint pillars: 0.8 m over [-51.2, 51.2] m (128 x 128),
# SECOND strides 2-2-2, SECONDFPN back to stride 4: 32 x 32 BEV, 3 x 32 ch.
TINY_GEOMETRY = textwrap.dedent('''\
    point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
    voxel_size = [0.8, 0.8, 8]
    grid_size = [128, 128, 1]
    out_size_factor = 4
    ''')

TINY_BRANCHES = textwrap.dedent('''\
    data_preprocessor=dict(
        voxel_layer=dict(
            point_cloud_range=point_cloud_range,
            voxel_size=voxel_size,
            max_voxels=(4000, 4000))),
    pts_voxel_encoder=dict(
        feat_channels=[16],
        voxel_size=voxel_size,
        point_cloud_range=point_cloud_range),
    pts_middle_encoder=dict(in_channels=16, output_shape=grid_size[:2]),
    ''')


def write_config(folder, name, text):
    """Write ``text`` as ``folder/name`` and return its path."""
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def lidar_batch(model, batch=2, training=True):
    """Preprocessed inputs of random points and two boxes per sample."""
    points, samples = [], []
    for seed in range(batch):
        gen = torch.Generator().manual_seed(seed)
        xyz = (torch.rand(1500, 3, generator=gen) - 0.5) * torch.tensor(
            [100.0, 100.0, 4.0])
        points.append(torch.cat([xyz, torch.rand(1500, 2, generator=gen)],
                                1))
        sample = Det3DDataSample(
            metainfo=dict(box_type_3d=LiDARInstance3DBoxes))
        gt = InstanceData()
        boxes = torch.tensor(
            [[5.0 + seed, 10.0, -1.5, 4.2, 1.8, 1.6, 0.3, 1.0, 0.5],
             [-12.0, -4.0 - seed, -1.2, 0.8, 0.7, 1.8, 0.0, 0.0, 0.0]])
        gt.bboxes_3d = LiDARInstance3DBoxes(boxes, box_dim=9)
        gt.labels_3d = torch.tensor([0, 8])
        sample.gt_instances_3d = gt
        samples.append(sample)
    data = model.data_preprocessor(
        dict(inputs=dict(points=points), data_samples=samples),
        training=training)
    return data['inputs'], data['data_samples']
