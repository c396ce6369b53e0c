"""The mediapipe worker's protocol, run in this environment with a fake estimator (no mediapipe needed):
in-process, and as a subprocess driven by ``preprocess.mediapipe.driver``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from hold.utils.io import write_png
from preprocess.config import MediapipeConfig
from preprocess.errors import PreprocessError
from preprocess.mediapipe import driver, worker
from tests.preprocess.mediapipe_fakes import FRAME_PIXEL, Broken, FakeHands, H, W

T = 4


def options(**changes) -> dict:
    return driver.worker_options(MediapipeConfig(**changes))


def write_frames(folder: Path) -> list[Path]:
    """T frames; frame t's red channel peaks at 100 + t (odd → the fake tracker misses it)."""
    paths = []
    for t in range(T):
        image = np.zeros((H, W, 3), np.uint8)
        image[0, 0, 0] = 100 + t
        write_png(folder / f"{t:05d}.png", image)
        paths.append(folder / f"{t:05d}.png")
    return paths


def request(frames: list[Path], **changes) -> dict:
    return {"protocol": worker.PROTOCOL, "frames": [str(p) for p in frames], "options": options(**changes)}


@pytest.mark.parametrize("upscale_to, pad_fraction", [(0, 0.0), (150, 0.0), (0, 0.25), (150, 0.1)])
def test_landmarks_come_back_in_frame_pixels(tmp_path: Path, upscale_to: int, pad_fraction: float):
    frames = write_frames(tmp_path)
    out = worker.process_request(
        request(frames, upscale_to=upscale_to, pad_fraction=pad_fraction), FakeHands, log=lambda m: None
    )
    np.testing.assert_allclose(out["landmarks"][:, 0, :, 0], FRAME_PIXEL[0], atol=1e-4)
    np.testing.assert_allclose(out["landmarks"][:, 0, :, 1], FRAME_PIXEL[1], atol=1e-4)
    np.testing.assert_array_equal(out["image_size"], [[H, W]] * T)


def test_video_mode_falls_back_to_detection(tmp_path: Path):
    frames = write_frames(tmp_path)
    out = worker.process_request(request(frames), FakeHands, log=lambda m: None)
    np.testing.assert_array_equal(out["count"], [1, 1, 1, 1])
    np.testing.assert_array_equal(out["source"][:, 0], [1, 2, 1, 2])  # odd frames: fallback
    assert np.isnan(out["landmarks"][:, 1]).all() and (out["source"][:, 1] == 0).all()  # empty slot
    np.testing.assert_allclose(out["handedness"][:, 0], 0.1)  # P(label "Right") of a "Left" at 0.9
    np.testing.assert_allclose(out["score"][:, 0], 0.9)
    without = worker.process_request(request(frames, detection_fallback=False), FakeHands, log=lambda m: None)
    np.testing.assert_array_equal(without["count"], [1, 0, 1, 0])
    image_mode = worker.process_request(request(frames, running_mode="image"), FakeHands, log=lambda m: None)
    np.testing.assert_array_equal(image_mode["source"][:, 0], [2, 2, 2, 2])


def test_worker_cli_exit_status_and_atomic_response(tmp_path: Path, capsys):
    frames = write_frames(tmp_path)
    req, resp = tmp_path / "request.json", tmp_path / "out" / "response.npz"
    req.write_text(json.dumps(request(frames)))
    assert worker.main([str(req), str(resp)], FakeHands) == worker.EXIT_OK
    with np.load(resp) as f:
        assert int(f["protocol"]) == worker.PROTOCOL and f["landmarks"].shape == (T, 2, 21, 3)
    assert [p.name for p in resp.parent.iterdir()] == ["response.npz"]  # no temporary left behind

    resp.unlink()
    assert worker.main([str(req), str(resp)], Broken) == worker.EXIT_FAILED
    assert "estimator exploded" in capsys.readouterr().err and not list(resp.parent.iterdir())

    bad = request(frames)
    del bad["options"]["upscale_to"]
    req.write_text(json.dumps(bad))
    assert worker.main([str(req), str(resp)], FakeHands) == worker.EXIT_USAGE
    assert "lacks ['upscale_to']" in capsys.readouterr().err
    req.write_text("{not json")
    assert worker.main([str(req), str(resp)], FakeHands) == worker.EXIT_USAGE
    assert worker.main([str(req)], FakeHands) == worker.EXIT_USAGE


def fake_worker_script(folder: Path, body: str) -> Path:
    """A worker script that runs the real worker module with ``FakeHands`` (or ``body`` instead)."""
    script = folder / "fake_worker.py"
    script.write_text(
        "import sys\n"
        f"sys.path[:0] = [{str(Path(worker.__file__).parent)!r}, {str(Path(__file__).parent)!r}]\n"
        "import worker\n"
        "from mediapipe_fakes import FakeHands\n" + body
    )
    return script


def test_driver_runs_the_worker_as_a_subprocess(tmp_path: Path):
    frames = write_frames(tmp_path / "frames")
    script = fake_worker_script(tmp_path, "sys.exit(worker.main(make_estimator=FakeHands))\n")
    response = driver.run_worker(Path(sys.executable), frames, options(), tmp_path / "mp", worker=script)
    det = driver.read_response(response, T, 2)
    np.testing.assert_array_equal(det.count, 1)
    np.testing.assert_allclose(
        det.landmarks[:, 0, :, :2], np.broadcast_to(FRAME_PIXEL, (T, 21, 2)), atol=1e-4
    )
    assert json.loads((tmp_path / "mp" / "request.json").read_text())["frames"][0] == str(frames[0].resolve())


def test_a_failing_worker_names_its_log(tmp_path: Path):
    frames = write_frames(tmp_path / "frames")
    script = fake_worker_script(tmp_path, "print('no hands today', file=sys.stderr)\nsys.exit(3)\n")
    with pytest.raises(PreprocessError, match=r"failed \(exit status 3\)[\s\S]*no hands today") as e:
        driver.run_worker(Path(sys.executable), frames, options(), tmp_path / "mp", worker=script)
    assert e.value.path == tmp_path / "mp" / "worker.log"
    silent = fake_worker_script(tmp_path, "sys.exit(0)\n")
    with pytest.raises(PreprocessError, match="without writing its response"):
        driver.run_worker(Path(sys.executable), frames, options(), tmp_path / "mp", worker=silent)
    missing = fake_worker_script(tmp_path, "import mediapipe\n")
    with pytest.raises(PreprocessError, match="make mediapipe-env"):
        driver.run_worker(Path(sys.executable), frames, options(), tmp_path / "mp", worker=missing)


def test_malformed_responses_name_the_file(tmp_path: Path):
    frames = write_frames(tmp_path / "frames")
    good = worker.process_request(request(frames), FakeHands, log=lambda m: None)
    path = tmp_path / "response.npz"
    for change, message in [
        (lambda a: a.pop("world"), "key 'world' is missing"),
        (lambda a: a.update(landmarks=a["landmarks"][:, :1]), r"'landmarks' expected shape \(4, 2, 21, 3\)"),
        (lambda a: a.update(protocol=np.array(99)), "protocol 99"),
        (lambda a: a.update(count=np.full(T, 3, np.int32)), "'count' outside 0..2"),
    ]:
        arrays = dict(good)
        change(arrays)
        np.savez(path, **arrays)
        with pytest.raises(PreprocessError, match=message) as e:
            driver.read_response(path, T, 2)
        assert e.value.path == path
    path.write_bytes(b"garbage")
    with pytest.raises(PreprocessError, match="not a readable .npz"):
        driver.read_response(path, T, 2)
