"""Similarity alignment of a reconstructed object to the ground truth: global search + ICP with scale.

HOLD §4 / docs/evaluation.md: the reconstructed canonical object is aligned to the GT mesh with rotation,
translation and scale before CD and F-score. ICP alone is local, so it is started from several global
initial rotations (after centroid and scale normalisation) and the start with the lowest Chamfer
distance wins.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from hold.config.eval import EvalConfig
from hold.geometry.surface import check_points


@dataclass(frozen=True)
class Similarity:
    """A similarity transform ``x -> scale * rotation @ x + translation``.

    Attributes:
        rotation: (3, 3) proper rotation matrix.
        translation: (3,) translation.
        scale: positive isotropic scale.
    """

    rotation: np.ndarray
    translation: np.ndarray
    scale: float

    @staticmethod
    def identity() -> Similarity:
        return Similarity(np.eye(3), np.zeros(3), 1.0)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform (N, 3) points; returns (N, 3)."""
        return self.scale * points @ self.rotation.T + self.translation

    def matrix(self) -> np.ndarray:
        """The (4, 4) homogeneous matrix of the transform."""
        m = np.eye(4)
        m[:3, :3] = self.scale * self.rotation
        m[:3, 3] = self.translation
        return m


@dataclass(frozen=True)
class Alignment:
    """Result of ``align_similarity``.

    Attributes:
        transform: source → target similarity.
        chamfer: symmetric Chamfer distance (squared input units, both directions summed) between the
            transformed source and the target at the end of ICP.
        iterations: ICP iterations of the final refinement.
        num_starts: number of initial rotations tried.
        best_start: index of the winning start in ``initial_transforms`` order.
    """

    transform: Similarity
    chamfer: float
    iterations: int
    num_starts: int
    best_start: int


def umeyama(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> Similarity:
    """Least-squares similarity ``dst ≈ s R src + t`` (Umeyama 1991), optionally weighted.

    Args:
        src: (N, 3) source points.
        dst: (N, 3) corresponding target points.
        weights: (N,) non-negative weights; uniform when None.

    Returns:
        The similarity minimising ``sum_i w_i |s R src_i + t - dst_i|^2`` with a proper rotation.
    """
    w = np.full(len(src), 1.0 / len(src)) if weights is None else weights / weights.sum()
    mu_s, mu_d = w @ src, w @ dst
    xs, xd = src - mu_s, dst - mu_d
    var_s = w @ np.sum(xs**2, axis=1)
    if not var_s > 0:
        raise ValueError("umeyama: source points are all identical; the scale is undefined")
    u, d, vt = np.linalg.svd((xd * w[:, None]).T @ xs)
    sign = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # keep a rotation, never a reflection
        sign[2] = -1.0
    rotation = u @ np.diag(sign) @ vt
    scale = float(np.sum(d * sign) / var_s)
    return Similarity(rotation, mu_d - scale * rotation @ mu_s, scale)


def cube_rotations() -> np.ndarray:
    """The 24 rotations of the cube group (signed permutation matrices with det +1), shape (24, 3, 3)."""
    mats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = np.zeros((3, 3))
            m[np.arange(3), perm] = signs
            if np.linalg.det(m) > 0:
                mats.append(m)
    return np.stack(mats)


def pca_frame(points: np.ndarray) -> np.ndarray:
    """Principal axes of a point cloud as the columns of a proper rotation, largest variance first, (3, 3)."""
    centred = points - points.mean(axis=0)
    _, vecs = np.linalg.eigh(centred.T @ centred)
    frame = vecs[:, ::-1].copy()
    if np.linalg.det(frame) < 0:
        frame[:, 2] *= -1.0
    return frame


def initial_transforms(source: np.ndarray, target: np.ndarray, mode: str) -> list[Similarity]:
    """Global starting points: centroids matched, RMS radii matched, and a set of rotations.

    Args:
        source: (N, 3) points to align.
        target: (M, 3) reference points.
        mode: ``cube``, ``pca`` or ``pca+cube`` (see ``EvalConfig.init_rotations``).

    Returns:
        One similarity per initial rotation (24 or 48).
    """
    c_s, c_t = source.mean(axis=0), target.mean(axis=0)
    rms_s = np.sqrt(np.mean(np.sum((source - c_s) ** 2, axis=1)))
    rms_t = np.sqrt(np.mean(np.sum((target - c_t) ** 2, axis=1)))
    if not rms_s > 0 or not rms_t > 0:
        raise ValueError("initial_transforms: a point cloud collapses to one point; cannot align")
    scale = float(rms_t / rms_s)
    cube = cube_rotations()
    rotations: list[np.ndarray] = []
    if mode in ("pca", "pca+cube"):
        p_s, p_t = pca_frame(source), pca_frame(target)
        rotations += [p_t @ c @ p_s.T for c in cube]
    if mode in ("cube", "pca+cube"):
        rotations += list(cube)
    if not rotations:
        raise ValueError(f"init_rotations: expected 'cube', 'pca' or 'pca+cube', found {mode!r}")
    return [Similarity(r, c_t - scale * r @ c_s, scale) for r in rotations]


def icp_with_scale(
    source: np.ndarray,
    target: np.ndarray,
    init: Similarity,
    max_iterations: int,
    tolerance: float,
    target_tree: cKDTree | None = None,
) -> tuple[Similarity, float, int]:
    """Symmetric ICP with scale: alternate nearest-neighbour matching and a weighted Umeyama fit.

    Correspondences are taken in both directions (source→target and target→source), each direction
    weighted by 1 / its point count, so each Umeyama step minimises exactly the symmetric Chamfer
    distance for the current matches. The target→source term stops the scale from shrinking the
    source onto a patch of the target, the failure of one-sided ICP with scale.

    Args:
        source: (N, 3) points to move.
        target: (M, 3) fixed points.
        init: initial source → target similarity.
        max_iterations: maximum number of Umeyama updates.
        tolerance: stop when the relative decrease of the Chamfer distance falls below it.
        target_tree: a prebuilt ``cKDTree(target)`` to reuse across calls.

    Returns:
        (transform, chamfer, iterations): the final similarity, the symmetric Chamfer distance it
        reaches (squared units, both directions summed) and the number of updates made.
    """
    tree_t = cKDTree(target) if target_tree is None else target_tree
    weights = np.concatenate(
        [np.full(len(source), 1.0 / len(source)), np.full(len(target), 1.0 / len(target))]
    )

    def match(transform: Similarity) -> tuple[float, np.ndarray, np.ndarray]:
        moved = transform.apply(source)
        d_st, i_st = tree_t.query(moved)
        d_ts, i_ts = cKDTree(moved).query(target)
        err = float(np.mean(d_st**2) + np.mean(d_ts**2))
        return err, np.concatenate([source, source[i_ts]]), np.concatenate([target[i_st], target])

    transform = init
    err, src_pairs, dst_pairs = match(transform)
    iterations = 0
    while iterations < max_iterations:
        candidate = umeyama(src_pairs, dst_pairs, weights)
        iterations += 1
        new_err, new_src, new_dst = match(candidate)
        if new_err > err:  # cannot happen in exact arithmetic; guards against round-off
            break
        converged = err - new_err <= tolerance * err
        transform, err, src_pairs, dst_pairs = candidate, new_err, new_src, new_dst
        if converged or err == 0.0:
            break
    return transform, err, iterations


def align_similarity(source: np.ndarray, target: np.ndarray, cfg: EvalConfig) -> Alignment:
    """Align ``source`` to ``target`` with rotation, translation and scale (HOLD §4, docs/evaluation.md).

    Every initial transform from ``initial_transforms`` is refined by a short ICP on random subsets of
    ``cfg.icp_coarse_num_points`` points; the start with the lowest Chamfer distance is then refined
    on all points until convergence.

    Args:
        source: (N, 3) samples of the reconstructed object surface.
        target: (M, 3) samples of the ground-truth object surface.
        cfg: evaluation settings (ICP iterations, tolerance, initial rotations, seed).

    Returns:
        The alignment of source onto target.
    """
    source = check_points(source, "source")
    target = check_points(target, "target")
    starts = initial_transforms(source, target, cfg.init_rotations)
    rng = np.random.default_rng(cfg.seed)
    sub_s = _subsample(source, cfg.icp_coarse_num_points, rng)
    sub_t = _subsample(target, cfg.icp_coarse_num_points, rng)
    tree_sub_t = cKDTree(sub_t)
    coarse = [
        icp_with_scale(sub_s, sub_t, s, cfg.icp_coarse_iterations, cfg.icp_tolerance, tree_sub_t)
        for s in starts
    ]
    best = int(np.argmin([err for _, err, _ in coarse]))
    transform, err, iterations = icp_with_scale(
        source, target, coarse[best][0], cfg.icp_max_iterations, cfg.icp_tolerance
    )
    return Alignment(transform, err, iterations, len(starts), best)


def _subsample(points: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    if len(points) <= count:
        return points
    return points[rng.choice(len(points), size=count, replace=False)]
