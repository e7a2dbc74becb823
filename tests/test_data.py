"""Training data: the sphere task, the CSV reader, and one-line errors for bad data files."""

import numpy as np
import pytest

from nnsmt.cli import main
from nnsmt.data import load_csv, save_csv, sphere_grid, sphere_planes, sphere_points
from nnsmt.errors import InputError

from conftest import EXAMPLES

NET = str(EXAMPLES / "sphere_3_8_2.onnx")


def test_sphere_points_are_on_the_sphere_and_labelled_by_two_planes():
    x, y = sphere_points(200, seed=3)
    assert x.shape == (200, 3) and np.allclose(np.linalg.norm(x, axis=1), 1)
    a, d = sphere_planes(3)
    assert np.array_equal(y, ((x @ a > 0) & (x @ d > 0)).astype(int))
    assert 0 < y.sum() < 200
    x2, y2 = sphere_points(200, seed=3)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)  # seeded
    assert not np.array_equal(x, sphere_points(200, seed=4)[0])


def test_sphere_grid_is_twelve_points_from_angles():
    x, y = sphere_grid(0)
    assert x.shape == (12, 3) and np.allclose(np.linalg.norm(x, axis=1), 1)
    # three latitudes (z = cos theta) of four points each
    assert sorted(set(np.round(x[:, 2], 12))) == pytest.approx([-np.sqrt(.5), 0, np.sqrt(.5)])


def test_csv_round_trip_is_bit_exact(tmp_path):
    x, y = sphere_points(30, seed=1)
    p = tmp_path / "d.csv"
    save_csv(p, x, y)
    d = load_csv(p, n_features=3, n_classes=2)
    assert np.array_equal(d.x, x) and np.array_equal(d.y, y)
    assert d.lines[0] == 2 and d.where(0) == f"{p}:2"  # line 1 is the header


def test_csv_without_header_and_with_comments(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("# xor\n0,0,0\n\n0,1,1\n1,0,1.0\n1,1,0\n")
    d = load_csv(p)
    assert d.n == 4 and d.dim == 2 and list(d.y) == [0, 1, 1, 0] and d.lines == (2, 4, 5, 6)


BAD = {
    "nan": ("x1,x2,x3,label\n0.1,0.2,0.3,1\n0.1,nan,0.3,0\n", ":3: 'nan' is not a finite number"),
    "columns": ("0.1,0.2,0.3,1\n0.1,0.2,1\n", ":2: 3 columns, expected 4"),
    "label_range": ("0.1,0.2,0.3,1\n0.1,0.2,0.3,2\n", ":2: label 2 is outside the network's classes 0..1"),
    "label_fraction": ("0.1,0.2,0.3,0.5\n", ":1: label '0.5' is not a class index"),
    "empty": ("", ": no data points (empty file)"),
    "header_only": ("a,b,c,label\n", ": no data points (empty file)"),
    "text": ("0.1,zero,0.3,1\n", ":1: 'zero' is not a number"),
    "header_width": ("a,b,label\n0.1,0.2,1\n", ":1: header has 3 columns, expected 4"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_data_file_is_one_line_exit_2(case, tmp_path, capsys):
    text, msg = BAD[case]
    p = tmp_path / f"{case}.csv"
    p.write_text(text)
    code = main(["train", NET, "--data", str(p)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"nnsmt: error: {p}") and msg in err, err


def test_missing_data_file(tmp_path, capsys):
    code = main(["compile", NET, "--mode", "train", "--data", str(tmp_path / "none.csv")])
    assert code == 2 and "no such file" in capsys.readouterr().err


def test_data_command_writes_sphere_csv(tmp_path, capsys):
    p = tmp_path / "s.csv"
    assert main(["data", "sphere", "--points", "25", "--seed", "0", "-o", str(p)]) == 0
    d = load_csv(p, n_features=3, n_classes=2)
    x, y = sphere_points(25, 0)
    assert np.array_equal(d.x, x) and np.array_equal(d.y, y)
    assert main(["data", "sphere", "--grid"]) == 0
    assert capsys.readouterr().out.count("\n") == 13  # header + 12 points


def test_load_csv_refuses_wrong_feature_count(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("1,2,0\n")
    with pytest.raises(InputError, match=r":1: 3 columns, expected 4"):
        load_csv(p, n_features=3)
