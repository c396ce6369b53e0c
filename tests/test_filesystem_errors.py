"""Filesystem problems are one line naming the path and the problem, in every command (no traceback);
``HOLD_DEBUG=1`` shows the traceback instead."""

from __future__ import annotations

import pytest

from hold.cli import train_main
from preprocess.cli import main as preprocess_main


def test_an_output_that_is_a_file_is_one_line(tiny_synthetic, tmp_path, capsys):
    blocker = tmp_path / "run"
    blocker.write_text("a file where the RUN dir should go")
    assert train_main([str(tiny_synthetic.oracle_dir), "--out", str(blocker), "logging.wandb=disabled"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(blocker) in err[0] and "Traceback" not in err[0]
    assert blocker.read_text() == "a file where the RUN dir should go"


def test_a_name_too_long_is_one_line(tiny_synthetic, tmp_path, capsys):
    seq = tmp_path / ("s" * 300)
    assert preprocess_main([str(tiny_synthetic.raw_dir), str(seq), "--steps", "frames"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "File name too long" in err[0] and "Traceback" not in err[0]


def test_synth_into_a_file_is_one_line(tmp_path, capsys):
    from hold.cli import synth_main

    blocker = tmp_path / "raw"
    blocker.write_text("x")
    assert synth_main([str(blocker), "--preset", "tiny"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(blocker) in err[0] and "Traceback" not in err[0]


def test_hold_debug_shows_the_traceback(tiny_synthetic, tmp_path, monkeypatch):
    blocker = tmp_path / "seq"
    blocker.write_text("not a dir")
    monkeypatch.setenv("HOLD_DEBUG", "1")
    with pytest.raises(OSError):
        preprocess_main([str(tiny_synthetic.raw_dir), str(blocker), "--steps", "frames"])
