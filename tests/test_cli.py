"""The hardex command: one line on stderr and exit status 2 for a hardex_nb error."""

import pytest

import hardex_nb as hx
from hardex_nb.cli import main


def test_a_missing_dataset_is_one_line_and_status_2(tmp_path, capsys):
    assert main(["train", "--dataset", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hardex train: ") and "not a hardex_nb dataset" in err
    assert "\n" not in err and "Traceback" not in err


def test_bad_options_are_refused_before_anything_is_recorded(tmp_path, capsys):
    ds = hx.Dataset.create(tmp_path / "d", task="classification", labels=["a", "b"])
    assert main(["train", "--dataset", str(ds.path), "--epochs", "0"]) == 2
    assert "epochs and batch_size must be at least 1" in capsys.readouterr().err
    assert main(["train", "--dataset", str(ds.path), "--val-fraction", "1.5"]) == 2
    assert "val_fraction=1.5" in capsys.readouterr().err
    assert hx.Dataset.open(ds.path).runs.empty
    with pytest.raises(SystemExit):  # argparse: an unknown choice
        main(["train", "--dataset", str(ds.path), "--mode", "slow"])


def test_collect_into_a_folder_that_is_not_a_dataset_says_so(tmp_path, capsys):
    ds = hx.Dataset.create(tmp_path / "d", task="classification", labels=["a", "b"])
    args = ["collect", "--dataset", str(ds.path), "--run", "V1", "--images", str(tmp_path)]
    assert main([*args, "--into", str(tmp_path / "inbox")]) == 2
    assert "no run 'V1'" in capsys.readouterr().err
