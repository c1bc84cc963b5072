"""tools/create_data.py verify: every referenced file and calibration of a
(corrupted copy of a) synthetic world, all problems at once."""
import glob
import importlib.util
import os
import os.path as osp
import shutil

import mmengine
import pytest

from mtl_fusion.datasets.verify import verify_dataset
from mtl_fusion.synthetic.manifest import MANIFEST, write_manifest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'mtl_fusion_create_data_tool_verify',
        osp.join(REPO, 'tools', 'create_data.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def tool():
    return _load_tool()


@pytest.fixture
def world(synthetic_nuscenes, tmp_path):
    """A private copy of the session world (corrupt it at will)."""
    root = str(tmp_path / 'world')
    shutil.copytree(synthetic_nuscenes, root)
    if not osp.isfile(osp.join(root, MANIFEST)):  # a reused older world
        write_manifest(root, skip=['.mtl_fusion_synthetic.json'])
    return root


def _infos(root, split='train'):
    return mmengine.load(osp.join(root, f'nuscenes_infos_{split}.pkl'))


def _truncate_points(path, keep_points, feats=5):
    with open(path, 'r+b') as f:
        f.truncate(keep_points * 4 * feats)


def _find(report, kind, file_part):
    found = [
        p for p in report.problems if p.kind == kind and file_part in p.file
    ]
    assert found, f'no {kind} problem for {file_part}:\n{report.format()}'
    return found[0]


def test_clean_world_passes(world, tool, capsys):
    report = verify_dataset(world, progress=False)
    assert report.ok, report.format()
    assert report.num_samples == len(_infos(world)['data_list']) + len(
        _infos(world, 'val')['data_list'])
    assert report.num_images == 6 * report.num_samples
    assert report.num_point_files >= report.num_samples
    assert report.num_manifest_files > report.num_images
    assert tool.main(['verify', '--root-path', world]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith(f'verify {world}: OK: no problems')


def test_all_faults_are_reported_at_once(world, tool, capsys):
    """Five faults of different kinds: one run names every one of them
    with its sample token, field and file, and exits non-zero."""
    train = _infos(world)['data_list']
    val = _infos(world, 'val')['data_list']
    # 1. a key frame truncated to a whole number of points (50 points)
    bin_info = train[0]
    bin_name = bin_info['lidar_points']['lidar_path']
    _truncate_points(osp.join(world, 'samples/LIDAR_TOP', bin_name), 50)
    # 2. an image deleted
    gone = train[1]['images']['CAM_FRONT']['img_path']
    os.remove(osp.join(world, 'samples/CAM_FRONT', gone))
    # 3. garbage written into an image
    garbage = train[2]['images']['CAM_BACK_LEFT']['img_path']
    with open(osp.join(world, 'samples/CAM_BACK_LEFT', garbage), 'wb') as f:
        f.write(b'not a jpeg at all' * 100)
    # 4. the map expansion of the first val sample's location deleted
    location = val[0]['location']
    os.remove(osp.join(world, 'maps', 'expansion', f'{location}.json'))
    # 5. NaN in a calibration
    infos = _infos(world, 'val')
    infos['data_list'][-1]['images']['CAM_FRONT_RIGHT']['cam2img'][0][2] = \
        float('nan')
    mmengine.dump(infos, osp.join(world, 'nuscenes_infos_val.pkl'))

    report = verify_dataset(world, progress=False)
    assert not report.ok

    p = _find(report, 'point_count', bin_name)
    assert p.sample_token == bin_info['token']
    assert p.field == 'lidar_points.lidar_path'
    assert '50 points' in p.message
    # the manifest catches it exactly
    p = _find(report, 'manifest', bin_name)
    assert '50 points instead of' in p.message
    assert p.sample_token == bin_info['token']

    p = _find(report, 'missing', gone)
    assert p.sample_token == train[1]['token']
    assert p.field == 'images.CAM_FRONT.img_path'

    p = _find(report, 'image', garbage)
    assert p.sample_token == train[2]['token']
    assert p.field == 'images.CAM_BACK_LEFT.img_path'
    assert 'does not decode' in p.message

    p = _find(report, 'missing', f'maps/expansion/{location}.json')
    assert p.field == 'location' and p.sample_token
    assert location in p.message

    cal = [q for q in report.problems if q.kind == 'calibration']
    assert len(cal) == 1
    assert cal[0].sample_token == infos['data_list'][-1]['token']
    assert cal[0].field == 'images.CAM_FRONT_RIGHT.cam2img'
    assert 'non-finite' in cal[0].message
    assert cal[0].info_file == 'nuscenes_infos_val.pkl'

    # the command line: every problem printed, a summary, exit status 1
    assert tool.main(['verify', '--root-path', world]) == 1
    out = capsys.readouterr().out
    for part in (bin_name, gone, garbage, f'{location}.json',
                 'images.CAM_FRONT_RIGHT.cam2img', bin_info['token']):
        assert part in out
    assert out.strip().splitlines()[-1].startswith(
        f'verify {world}: FAILED: {len(report.problems)} problem(s)')


def test_whole_point_truncation_is_caught_exactly_by_the_manifest(world):
    """A .bin cut by a few whole points passes the modulo and median checks;
    the generator's manifest still names it, with both point counts."""
    info = _infos(world)['data_list'][3]
    name = info['lidar_points']['lidar_path']
    path = osp.join(world, 'samples/LIDAR_TOP', name)
    points = osp.getsize(path) // 20
    _truncate_points(path, points - 10)
    report = verify_dataset(world, progress=False)
    assert [p.kind for p in report.problems] == ['manifest'], report.format()
    p = report.problems[0]
    assert f'{points - 10} points instead of {points}' in p.message
    assert p.file == f'samples/LIDAR_TOP/{name}'
    assert p.sample_token == info['token']
    assert p.field == 'lidar_points.lidar_path'
    # without the manifest nothing else can see it
    assert verify_dataset(world, use_manifest=False, progress=False).ok


def test_sweeps_odd_sizes_and_missing_files(world):
    info = _infos(world)['data_list'][1]
    sweep = info['lidar_sweeps'][0]['lidar_points']['lidar_path']
    folder = 'samples' if 'samples' in sweep else 'sweeps'
    sweep_path = osp.join(world, folder, 'LIDAR_TOP', osp.basename(sweep))
    with open(sweep_path, 'r+b') as f:  # not a whole number of points
        f.truncate(osp.getsize(sweep_path) - 7)
    other = _infos(world)['data_list'][4]
    key = other['lidar_points']['lidar_path']
    os.remove(osp.join(world, 'samples/LIDAR_TOP', key))
    report = verify_dataset(world, use_manifest=False, progress=False)
    p = _find(report, 'truncated', osp.basename(sweep))
    assert p.field == 'lidar_sweeps[0].lidar_points.lidar_path'
    assert p.sample_token == info['token']
    assert 'not a whole number of points' in p.message
    p = _find(report, 'missing', key)
    assert p.sample_token == other['token']
    # the manifest does not report the already-missing file a second time
    report = verify_dataset(world, progress=False)
    assert len([q for q in report.problems if key in q.file]) == 1


def test_location_from_the_devkit_tables(world):
    """Infos without ``location``: the map is found via sample -> scene ->
    log of <version>/*.json."""
    path = osp.join(world, 'nuscenes_infos_train.pkl')
    infos = mmengine.load(path)
    location = infos['data_list'][0].pop('location')
    for entry in infos['data_list']:
        entry.pop('location', None)
    mmengine.dump(infos, path)
    assert verify_dataset(world, progress=False).ok
    os.remove(osp.join(world, 'maps', 'expansion', f'{location}.json'))
    report = verify_dataset(world, progress=False)
    p = _find(report, 'missing', f'{location}.json')
    assert 'log.json' in p.field


def test_infos_argument_and_progress_bar(world, tool, capsys):
    report = verify_dataset(
        world, infos=['nuscenes_infos_val.pkl'], progress=True)
    assert report.ok and report.num_info_files == 1
    assert 'task/s' in capsys.readouterr().out  # mmengine's ProgressBar
    missing = osp.join(world, 'nope.pkl')
    assert tool.main(['verify', '--root-path', world, '--infos', missing]) == 1
    assert 'nope.pkl' in capsys.readouterr().out


def test_root_without_infos(tmp_path, synthetic_nuscenes):
    root = str(tmp_path / 'bare')
    shutil.copytree(
        osp.join(synthetic_nuscenes, 'maps'), osp.join(root, 'maps'))
    report = verify_dataset(root, progress=False)
    assert not report.ok
    assert 'no info files' in report.problems[0].message
    assert not glob.glob(osp.join(root, '*.pkl'))
