"""The generator's size manifest: every file, exact sizes, deterministic."""
import glob
import os
import os.path as osp

import pytest

from mtl_fusion.synthetic import generate_synthetic_nuscenes
from mtl_fusion.synthetic.manifest import (MANIFEST, build_manifest,
                                           load_manifest)

ONE = dict(
    num_scenes=1, samples_per_scene=2, sweeps_per_sample=1, progress=False)


def test_the_world_has_a_manifest_of_every_file(synthetic_nuscenes):
    manifest = load_manifest(synthetic_nuscenes)
    if manifest is None and os.environ.get('MTL_FUSION_TEST_DATA'):
        pytest.skip('MTL_FUSION_TEST_DATA holds a world of an older '
                    'generator (no manifest.json)')
    assert manifest is not None
    assert manifest['num_pts_feats'] == 5
    files = manifest['files']
    on_disk = {
        osp.relpath(p, synthetic_nuscenes).replace(os.sep, '/')
        for p in glob.glob(
            osp.join(synthetic_nuscenes, '**', '*'), recursive=True)
        if osp.isfile(p)
    }
    assert set(files) == on_disk - {MANIFEST} - {
        p
        for p in on_disk if p.endswith('.pkl')
    }
    bins = [p for p in files if p.endswith('.pcd.bin')]
    assert bins and all(files[p]['points'] * 20 == files[p]['size']
                        for p in bins)
    assert all('points' not in e for p, e in files.items()
               if not p.endswith('.bin'))
    assert build_manifest(synthetic_nuscenes,
                          skip=['.mtl_fusion_synthetic.json'])['files'] == \
        files


def test_manifest_is_deterministic_and_replaced(tmp_path):
    a = generate_synthetic_nuscenes(str(tmp_path / 'a'), seed=5, **ONE)
    b = generate_synthetic_nuscenes(str(tmp_path / 'b'), seed=5, **ONE)
    with open(osp.join(a, MANIFEST), 'rb') as fa, \
            open(osp.join(b, MANIFEST), 'rb') as fb:
        assert fa.read() == fb.read()
    # regenerating into the root rewrites it (no stale entries)
    generate_synthetic_nuscenes(b, seed=6, **ONE)
    files = load_manifest(b)['files']
    assert all(osp.isfile(osp.join(b, p)) for p in files)


def test_a_foreign_manifest_is_refused(tmp_path):
    (tmp_path / MANIFEST).write_text('{"files": []}')
    with pytest.raises(ValueError, match='not a mtl_fusion-synthetic'):
        load_manifest(str(tmp_path))
    assert load_manifest(str(tmp_path / 'absent')) is None
