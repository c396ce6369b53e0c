"""SfM back ends for step ``sfm``: pycolmap SIFT (default) and hloc (when installed).

Both take the object-only images of ``preprocess.sfm_images`` (one shared pinhole camera, or one per
object crop with pycolmap) and return the reconstructions, largest first, with a record of each
mapping attempt. Matching follows the sequence length: sequential pairs (the object turns a little
between frames) plus either every pair (short clips) or retrieval (long clips: a vocabulary tree when
one is given, else every pair among keyframes); guided matching re-matches with the verified geometry.
pycolmap maps twice when frames are left over: with the configured thresholds, then relaxed ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image  # noqa: F401  (load Pillow's zlib before pycolmap's: the other order crashes PNG writes)

from hold.utils.external import require, resolve_backend
from hold.utils.logging import get_logger
from preprocess.config import SfmConfig
from preprocess.errors import PreprocessError
from preprocess.sfm_images import SfmImages

STEP = "sfm"
log = get_logger("preprocess.sfm")


@dataclass
class CameraPrior:
    """The shared camera given to SfM (OpenCV pixel convention: centre of the first pixel at 0).

    Attributes:
        K: (3, 3) intrinsics: the known ones, or the prior of the focal length.
        known: K comes from camera.json and is kept fixed.
    """

    K: np.ndarray
    known: bool

    def colmap_model(self, cfg: SfmConfig) -> tuple[str, str]:
        """COLMAP camera model and parameter string; COLMAP puts the first pixel's centre at 0.5."""
        fx, fy, cx, cy = self.K[0, 0], self.K[1, 1], self.K[0, 2] + 0.5, self.K[1, 2] + 0.5
        if self.known or cfg.camera_model == "PINHOLE":
            return "PINHOLE", f"{fx},{fy},{cx},{cy}"
        return "SIMPLE_PINHOLE", f"{0.5 * (fx + fy)},{cx},{cy}"


def camera_matrix(camera) -> np.ndarray:  # camera: pycolmap.Camera
    """(3, 3) OpenCV-convention intrinsics of a pycolmap pinhole camera."""
    K = np.asarray(camera.calibration_matrix(), np.float64).copy()
    K[0, 2] -= 0.5
    K[1, 2] -= 0.5
    return K


def choose_backend(cfg: SfmConfig) -> str:
    """``pycolmap`` or ``hloc`` for ``sfm.backend`` (``auto``: hloc when it imports, else pycolmap with
    one warning)."""
    try:
        return resolve_backend(
            cfg.backend,
            feature="SfM features and matching",
            setting="sfm.backend",
            fallback="pycolmap",
            accelerated="hloc",
            package="hloc",
        )
    except ImportError as e:
        raise PreprocessError(STEP, str(e)) from None


def keyframe_pairs(names: list[str], stride: int) -> list[tuple[str, str]]:
    """Every pair among every ``stride``-th image (retrieval without a vocabulary tree)."""
    keys = names[:: max(stride, 1)]
    return [(a, b) for i, a in enumerate(keys) for b in keys[i + 1 :]]


def mapper_options(cfg: SfmConfig, prior: CameraPrior, num_images: int, relaxed: bool = False):
    """COLMAP's incremental mapper settings; ``relaxed`` lowers the inlier thresholds (second attempt)."""
    import pycolmap

    opts = pycolmap.IncrementalPipelineOptions()
    opts.min_num_matches = cfg.min_num_matches
    opts.num_threads = cfg.num_threads
    opts.random_seed = cfg.seed
    opts.min_model_size = min(opts.min_model_size, max(3, num_images // 10))
    opts.ba_refine_focal_length = not prior.known
    opts.ba_refine_principal_point = False
    opts.ba_refine_extra_params = False
    opts.mapper.init_min_num_inliers = cfg.init_min_num_inliers
    opts.mapper.abs_pose_min_num_inliers = cfg.abs_pose_min_num_inliers
    opts.mapper.abs_pose_refine_focal_length = not prior.known
    opts.mapper.abs_pose_refine_extra_params = False
    opts.mapper.num_threads = cfg.num_threads
    opts.mapper.random_seed = cfg.seed
    if relaxed:
        opts.mapper.init_min_num_inliers = cfg.relaxed_init_min_num_inliers
        opts.mapper.abs_pose_min_num_inliers = cfg.relaxed_abs_pose_min_num_inliers
        opts.mapper.abs_pose_min_inlier_ratio = cfg.relaxed_abs_pose_min_inlier_ratio
        opts.mapper.init_min_tri_angle = cfg.relaxed_init_min_tri_angle
        opts.mapper.max_reg_trials = 2 * opts.mapper.max_reg_trials
    return opts


def _set_image_cameras(db_path: Path, images: SfmImages) -> None:
    """Give every image its own crop's intrinsics (extraction made one placeholder camera per image)."""
    import pycolmap

    K_by_name = dict(zip(images.names, images.K))
    db = pycolmap.Database.open(str(db_path))
    try:
        for image in db.read_all_images():
            camera = db.read_camera(image.camera_id)
            K = K_by_name[image.name]
            camera.params = [K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5]  # COLMAP: first pixel centre 0.5
            db.update_camera(camera)
    finally:
        db.close()


def build_database(images: SfmImages, work: Path, prior: CameraPrior, cfg: SfmConfig) -> Path:
    """SIFT features (inside the object masks) and verified matches in a COLMAP database."""
    import pycolmap

    pycolmap.logging.minloglevel = 2  # COLMAP's per-image INFO lines drown the stage logs
    db = work / "database.db"
    db.unlink(missing_ok=True)
    names = images.names
    model, params = prior.colmap_model(cfg)
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model, reader.camera_params, reader.mask_path = model, params, str(images.mask_dir)
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = cfg.num_threads
    extraction.sift.max_num_features = cfg.max_num_features
    extraction.sift.peak_threshold = cfg.peak_threshold
    extraction.sift.domain_size_pooling = cfg.domain_size_pooling
    extraction.sift.estimate_affine_shape = cfg.estimate_affine_shape
    log.info(
        "SIFT features of %d object-only images%s", len(names), " (object crops)" if images.cropped else ""
    )
    camera_mode = pycolmap.CameraMode.PER_IMAGE if images.cropped else pycolmap.CameraMode.SINGLE
    pycolmap.extract_features(
        db, images.image_dir, image_names=names, camera_mode=camera_mode,
        reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu,
    )  # fmt: skip
    if images.cropped:
        _set_image_cameras(db, images)
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = cfg.num_threads
    matching.guided_matching = cfg.guided_matching
    verification = pycolmap.TwoViewGeometryOptions()
    verification.min_num_inliers = cfg.min_num_matches
    verification.ransac.random_seed = cfg.seed
    sequential = pycolmap.SequentialPairingOptions()
    sequential.overlap, sequential.loop_detection = cfg.sequential_overlap, False  # no vocab tree offline
    pycolmap.match_sequential(
        db, matching_options=matching, pairing_options=sequential, verification_options=verification
    )
    if len(names) <= cfg.exhaustive_max_frames:
        log.info("matching: sequential (overlap %d) + exhaustive", cfg.sequential_overlap)
        pycolmap.match_exhaustive(db, matching_options=matching, verification_options=verification)
    elif cfg.vocab_tree:
        log.info("matching: sequential + vocabulary-tree retrieval (%s)", cfg.vocab_tree)
        retrieval = pycolmap.VocabTreePairingOptions()
        retrieval.vocab_tree_path = cfg.vocab_tree
        pycolmap.match_vocabtree(
            db, matching_options=matching, pairing_options=retrieval, verification_options=verification
        )
    else:
        pairs = keyframe_pairs(names, cfg.keyframe_stride)
        log.info(
            "matching: sequential + %d keyframe pairs (every %d-th frame)", len(pairs), cfg.keyframe_stride
        )
        pair_file = work / "keyframe_pairs.txt"
        pair_file.write_text("".join(f"{a} {b}\n" for a, b in pairs))
        imported = pycolmap.ImportedPairingOptions()
        imported.match_list_path = pair_file
        pycolmap.match_image_pairs(
            db, matching_options=matching, pairing_options=imported, verification_options=verification
        )
    return db


def map_database(db: Path, images: SfmImages, work: Path, prior: CameraPrior, cfg: SfmConfig, relaxed: bool):
    """Incremental mapping; returns the reconstructions, largest first."""
    import pycolmap

    out = work / ("sparse_relaxed" if relaxed else "sparse")
    out.mkdir(parents=True, exist_ok=True)
    options = mapper_options(cfg, prior, len(images.names), relaxed)
    models = pycolmap.incremental_mapping(db, images.image_dir, out, options=options)
    return sorted(models.values(), key=lambda r: r.num_reg_images(), reverse=True)


def run_pycolmap(
    images: SfmImages, work: Path, prior: CameraPrior, cfg: SfmConfig
) -> tuple[list, list[dict]]:
    """SIFT, matching and mapping with pycolmap: a first attempt with the configured mapper thresholds,
    a relaxed second one on the same matches when frames are left over.

    Returns:
        The reconstructions of the attempt that registered most frames (largest first), and one record
        per attempt: its name, the frames its largest model registered and the size of every model.
    """
    db = build_database(images, work, prior, cfg)
    attempts, best = [], []
    for relaxed in (False, True) if cfg.relaxed_attempt else (False,):
        log.info("incremental mapping%s", " (relaxed thresholds)" if relaxed else "")
        models = map_database(db, images, work, prior, cfg, relaxed)
        sizes = [m.num_reg_images() for m in models]
        attempts.append(
            {
                "name": "relaxed" if relaxed else "default",
                "registered": sizes[0] if sizes else 0,
                "models": sizes,
            }
        )
        log.info("sfm attempt %r: largest model registered %d of %d images (models: %s)",
                 attempts[-1]["name"], attempts[-1]["registered"], len(images.names), sizes or "none")  # fmt: skip
        if sizes and (not best or sizes[0] > best[0].num_reg_images()):
            best = models
        if best and best[0].num_reg_images() == len(images.names):
            break
    return best, attempts


def run_hloc(images: SfmImages, work: Path, prior: CameraPrior, cfg: SfmConfig) -> tuple[list, list[dict]]:
    """SuperPoint + LightGlue features and matches with hloc, mapping with pycolmap (thin adapter).

    hloc has no feature masks: the object-only images (background painted over) keep its features on
    the object. Pairs: sequential + exhaustive or keyframes, as in ``run_pycolmap``. One shared camera:
    the caller does not crop for this backend. Returns what ``run_pycolmap`` returns.
    """
    import pycolmap

    require("hloc", "sfm.backend=hloc")  # one clear error when it is missing (hold.utils.external)
    from hloc import extract_features, match_features, reconstruction

    image_dir, names = images.image_dir, images.names
    pairs = {(a, b) for i, a in enumerate(names) for b in names[i + 1 : i + 1 + cfg.sequential_overlap]}
    if len(names) <= cfg.exhaustive_max_frames:
        pairs |= {(a, b) for i, a in enumerate(names) for b in names[i + 1 :]}
    else:
        pairs |= set(keyframe_pairs(names, cfg.keyframe_stride))
    pair_file = work / "pairs.txt"
    pair_file.write_text("".join(f"{a} {b}\n" for a, b in sorted(pairs)))
    feature_conf = extract_features.confs[cfg.hloc_features]
    matcher_conf = match_features.confs[cfg.hloc_matcher]
    features = extract_features.main(feature_conf, image_dir, work, image_list=names)
    matches = match_features.main(matcher_conf, pair_file, feature_conf["output"], work)
    model, params = prior.colmap_model(cfg)
    top_level = ("min_num_matches", "num_threads", "random_seed") + tuple(
        k for k in mapper_options(cfg, prior, len(names)).todict() if k.startswith("ba_refine")
    )
    options = mapper_options(cfg, prior, len(names)).todict()
    rec = reconstruction.main(
        work / "sparse", image_dir, pair_file, features, matches,
        camera_mode=pycolmap.CameraMode.SINGLE, image_list=names,
        image_options={"camera_model": model, "camera_params": params},
        mapper_options={k: options[k] for k in top_level},
    )  # fmt: skip
    registered = 0 if rec is None else rec.num_reg_images()
    return ([] if rec is None else [rec]), [
        {"name": "hloc", "registered": registered, "models": [registered]}
    ]
