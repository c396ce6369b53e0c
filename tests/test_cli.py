from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from hold.cli import EXIT_USAGE, export_main, train_main
from hold.config import list_presets
from preprocess.cli import main as preprocess_main

ROOT = Path(__file__).resolve().parents[1]


def test_package_imports_in_fresh_interpreter():
    subprocess.run([sys.executable, "-c", "import hold, preprocess"], check=True, cwd=ROOT)


def test_train_help_lists_presets_and_overrides(capsys):
    try:
        train_main(["--help"])
    except SystemExit as e:
        assert e.code == 0
    out = capsys.readouterr().out
    for name in list_presets():
        assert f"  {name} " in out
    assert "key=value" in out and "unknown key" in out


def test_train_rejects_broken_sequence_naming_the_key(sequence_dir: Path, tmp_path: Path, capsys):
    path = sequence_dir / "sequence.npz"
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["object.rot"] = arrays["object.rot"][:, :2]
    np.savez(path, **arrays)
    code = train_main([str(sequence_dir), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "object.rot" in err and "(4, 3)" in err and "Traceback" not in err


def test_train_bad_override_is_one_line_error(sequence_dir: Path, tmp_path: Path, capsys):
    code = train_main([str(sequence_dir), "--out", str(tmp_path / "r"), "hand.colour=red"])
    assert code == EXIT_USAGE
    assert "hand.colour" in capsys.readouterr().err


def test_export_of_a_missing_run_is_one_line_error(tmp_path: Path, capsys):
    assert export_main([str(tmp_path / "nothing")]) == EXIT_USAGE
    assert "config.yaml: missing" in capsys.readouterr().err


def test_preprocess_rejects_unknown_step(tmp_path: Path, capsys):
    assert preprocess_main([str(tmp_path), str(tmp_path / "seq"), "--steps", "frames,magic"]) == EXIT_USAGE
    assert "magic" in capsys.readouterr().err


def test_console_scripts_installed():
    bin_dir = Path(sys.executable).parent
    for name in ("hold-synth", "hold-preprocess", "hold-train", "hold-export", "hold-eval"):
        assert (bin_dir / name).exists(), name
