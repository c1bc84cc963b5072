"""Reading and plotting the calibration scalars of a work dir."""
import json
import os

import pytest

from mtl_fusion.analysis import (find_scalars, load_calibration,
                                 plot_calibration)


def _write_scalars(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'w') as f:
        for record in records:
            f.write(json.dumps(record) + '\n')


def test_series_by_name_without_prefix(tmp_path):
    scalars = tmp_path / 'run' / '20260101_000000' / 'vis_data' / \
        'scalars.json'
    _write_scalars(scalars, [
        {'iter': 1, 'calib/gamma_task': 2.0, 'calib/w_lidar': 0.9,
         'loss': 3.0},
        {'iter': 2, 'calib/gamma_task': 1.5, 'calib/w_lidar': 0.8},
        {'lr': 0.1},  # no step: ignored
        {'step': 3, 'calib/gamma_task': 1.25},
    ])
    assert find_scalars(str(tmp_path / 'run')) == str(scalars)
    assert find_scalars(str(scalars)) == str(scalars)
    series = load_calibration(str(scalars))
    assert series == {
        'gamma_task': ([1, 2, 3], [2.0, 1.5, 1.25]),
        'w_lidar': ([1, 2], [0.9, 0.8]),
    }
    out = plot_calibration(series, str(tmp_path / 'png' / 'curves.png'))
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert os.path.getsize(out) > 10000


def test_missing_scalars_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='no scalars.json'):
        find_scalars(str(tmp_path))
    scalars = tmp_path / 'scalars.json'
    _write_scalars(scalars, [{'iter': 1, 'loss': 1.0}])
    with pytest.raises(ValueError, match='FullerOptimWrapper'):
        load_calibration(str(scalars))
