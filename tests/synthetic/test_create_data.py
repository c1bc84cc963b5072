"""tools/create_data.py: synthetic generation, real-nuScenes infos, errors."""
import importlib.util
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import mmengine
import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'mtl_fusion_create_data_tool', osp.join(REPO, 'tools',
                                                'create_data.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def tool():
    return _load_tool()


def _copy_tables(root, dst):
    """A nuScenes root with the tables and maps of ``root`` (no sensors)."""
    shutil.copytree(osp.join(root, 'v1.0-mini'), osp.join(dst, 'v1.0-mini'))
    shutil.copytree(osp.join(root, 'maps'), osp.join(dst, 'maps'))
    return str(dst)


def test_nuscenes_infos_from_a_nuscenes_root(tool, synthetic_nuscenes,
                                             tmp_path):
    before = sorted(os.listdir(synthetic_nuscenes))
    out = tmp_path / 'infos'
    assert tool.main([
        'nuscenes', '--root-path', synthetic_nuscenes, '--version',
        'v1.0-mini', '--out-dir',
        str(out)
    ]) == 0
    # the dataroot is only read
    assert sorted(os.listdir(synthetic_nuscenes)) == before
    for split in ('train', 'val'):
        new = mmengine.load(str(out / f'nuscenes_infos_{split}.pkl'))
        ref = mmengine.load(
            osp.join(synthetic_nuscenes, f'nuscenes_infos_{split}.pkl'))
        assert new['metainfo'] == ref['metainfo']
        assert repr(new['data_list']) == repr(ref['data_list'])
        assert all('location' in e for e in new['data_list'])


def test_errors_name_the_path_or_key(tool, synthetic_nuscenes, tmp_path):
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError, match='nowhere'):
        tool.main(
            ['nuscenes', '--root-path', missing, '--version', 'v1.0-mini'])
    root = _copy_tables(synthetic_nuscenes, tmp_path / 'root')
    with pytest.raises(FileNotFoundError, match='v1.0-trainval'):
        tool.main(
            ['nuscenes', '--root-path', root, '--version', 'v1.0-trainval'])
    os.remove(osp.join(root, 'v1.0-mini', 'sample_data.json'))
    with pytest.raises(FileNotFoundError, match='sample_data.json'):
        tool.main(['nuscenes', '--root-path', root, '--version', 'v1.0-mini'])

    root = _copy_tables(synthetic_nuscenes, tmp_path / 'nomap')
    os.remove(osp.join(root, 'maps', 'expansion', 'boston-seaport.json'))
    with pytest.raises(
            FileNotFoundError,
            match=r"'boston-seaport'.*boston-seaport\.json"):
        tool.main(['nuscenes', '--root-path', root, '--version', 'v1.0-mini'])

    log_path = osp.join(root, 'v1.0-mini', 'log.json')
    with open(log_path) as f:
        logs = json.load(f)
    logs[0]['location'] = 'atlantis'
    with open(log_path, 'w') as f:
        json.dump(logs, f)
    with pytest.raises(ValueError, match="'location' = 'atlantis'"):
        tool.main([
            'nuscenes', '--root-path', root, '--version', 'v1.0-mini',
            '--no-map-check'
        ])


def test_synthetic_subcommand_with_picture(tool, tmp_path):
    from PIL import Image
    root, picture = tmp_path / 'world', tmp_path / 'pic' / 'sample.png'
    assert tool.main([
        'synthetic-nuscenes', '--root-path',
        str(root), '--num-scenes', '2', '--samples-per-scene', '2',
        '--sweeps-per-sample', '1', '--seed', '5', '--quiet', '--picture',
        str(picture)
    ]) == 0
    assert osp.isfile(root / 'nuscenes_infos_val.pkl')
    with Image.open(picture) as img:
        assert img.size == (1440, 1080)


def test_tool_runs_outside_the_repo(tmp_path):
    """As installed (mtl_fusion/.mim/tools/create_data.py), not in tools/."""
    copy = tmp_path / 'mim' / 'tools' / 'create_data.py'
    copy.parent.mkdir(parents=True)
    shutil.copy(osp.join(REPO, 'tools', 'create_data.py'), copy)
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run([
        sys.executable,
        str(copy), 'nuscenes', '--root-path',
        str(tmp_path / 'absent'), '--version', 'v1.0-mini'
    ],
                          cwd=str(tmp_path),
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode != 0
    assert 'nuScenes dataroot not found' in proc.stderr
    assert str(tmp_path / 'absent') in proc.stderr
