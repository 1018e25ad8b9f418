r"""Average precision on the `KITTI 3D object benchmark
<https://www.cvlibs.net/datasets/kitti/eval_object.php?obj_benchmark=3d>`_.

The protocol is the official devkit's (``evaluate_object_3d_offline.cpp``, and
the python port in OpenPCDet / SECOND that most papers report):

1. For each class, difficulty level (easy, moderate, hard) and frame, a
   ground-truth object is *valid* if it is of the class and meets the level
   (2D box taller than ``DIFFICULTY_MIN_HEIGHT``, at most
   ``DIFFICULTY_MAX_OCCLUSION`` and ``DIFFICULTY_MAX_TRUNCATION``; strictly
   taller, the devkit's inequality, where
   :attr:`~pointkd.datasets.kitti.KittiObject.difficulty` accepts equality); it is
   *ignored* (neither a true positive nor a miss) if it is of the class but
   misses the level, or of the neighbouring class (Van for Car,
   Person_sitting for Pedestrian); other objects play no part. Detections of
   the class whose 2D box is lower than the level's minimum height are
   ignored: they may absorb an object but never count.
2. A detection matches an object when their overlap (2D, BEV or 3D IoU) is
   greater than the class's minimum overlap. Scanning the objects in order,
   each takes the free detection of highest score; the scores of the
   resulting true positives give up to 41 score thresholds spread over
   recall (:func:`recall_thresholds`).
3. At each threshold the detections scoring at least as much are matched
   again, each object taking the free valid detection of greatest overlap
   (an ignored one if there is none): true positives, misses and false
   positives give the precision :math:`p_i`; a detection matched to an
   ignored object is no false positive, nor is one whose 2D box lies in a
   DontCare region (intersection over the detection's 2D area greater than
   the minimum overlap).
4. With :math:`\hat p_i = \max_{j \ge i} p_j` (0 past the last threshold),

   .. math::
       \text{AP}_{R11} = \frac{100}{11} \sum_{k=0}^{10} \hat p_{4k}, \qquad
       \text{AP}_{R40} = \frac{100}{40} \sum_{i=1}^{40} \hat p_i.

Two choices differ from the devkits, both on purpose:

- DontCare regions are compared with the detections' 2D boxes for every
  metric. The devkits test a DontCare region with the metric's own overlap,
  and a DontCare label's 3D box is a placeholder (size -1, location -1000)
  that overlaps nothing, so their BEV and 3D scores count detections in
  DontCare regions as false positives. ``dontcare_all_metrics=False``
  reproduces that.
- Detections of another class never take part. The devkits mark every
  detection shorter than the minimum height as ignored, whatever its class,
  so that a small Pedestrian detection can absorb a Car.

Both devkits give an AP of 0 to a class without valid ground truth at a level
(no true positive, hence no threshold and no precision); so does this module,
rather than NaN, so that averages over classes stay those of published tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from pointkd.datasets.kitti import (
    CLASSES,
    DIFFICULTY_MAX_OCCLUSION,
    DIFFICULTY_MAX_TRUNCATION,
    DIFFICULTY_MIN_HEIGHT,
    DIFFICULTY_NAMES,
    KittiObject,
)
from pointkd.detection.iou import kitti_3d_iou, kitti_bev_iou

# The devkit's minimum overlaps for its headline numbers ("hard" overlaps).
KITTI_MIN_OVERLAPS = {"Car": 0.7, "Pedestrian": 0.5, "Cyclist": 0.5}
# Ground truth of these classes is ignored, not missed, when evaluating the key.
NEIGHBOUR_CLASSES = {"Car": ("Van",), "Pedestrian": ("Person_sitting",)}
METRICS = ("bbox", "bev", "3d")
NUM_RECALL_POINTS = 41

# Frames x thresholds x detections matched at once (bounds memory on large splits).
_MATCH_CHUNK = 1 << 22


def camera_boxes(objects: Sequence[KittiObject]) -> torch.Tensor:
    r"""Camera-frame boxes :math:`(x, y, z, l, h, w, r_y)` of labelled objects, ``(N, 7)`` float64."""
    if not objects:
        return torch.zeros(0, 7, dtype=torch.float64)
    return torch.tensor(
        [(*obj.location, obj.dimensions[2], obj.dimensions[0], obj.dimensions[1], obj.rotation_y) for obj in objects],
        dtype=torch.float64,
    )


def recall_thresholds(scores: Sequence[float] | np.ndarray, num_ground_truth: int) -> list[float]:
    r"""The devkit's score thresholds: from the true positives' scores, sorted
    down, the ones whose recall :math:`(i + 1) / n` comes closest to each of
    :math:`0, 1/40, \dots, 1` in turn.

    Args:
        scores (sequence of float): scores of the true positives.
        num_ground_truth (int): the number :math:`n` of valid objects.
    """
    ordered = sorted((float(score) for score in scores), reverse=True)
    if ordered and num_ground_truth < len(ordered):
        raise ValueError(
            f"num_ground_truth must be at least the number of true positives ({len(ordered)}), got {num_ground_truth}"
        )
    thresholds: list[float] = []
    current_recall = 0.0
    for index, score in enumerate(ordered):
        left_recall = (index + 1) / num_ground_truth
        last = index == len(ordered) - 1
        right_recall = left_recall if last else (index + 2) / num_ground_truth
        if not last and right_recall - current_recall < current_recall - left_recall:
            continue
        thresholds.append(score)
        current_recall += 1.0 / (NUM_RECALL_POINTS - 1.0)
    return thresholds[:NUM_RECALL_POINTS]


def _box2d_overlap(boxes_a: np.ndarray, boxes_b: np.ndarray, over_first: bool = False) -> np.ndarray:
    """Paired 2D overlaps ``(K,)``: IoU, or intersection over ``boxes_a``'s area."""
    width = np.minimum(boxes_a[:, 2], boxes_b[:, 2]) - np.maximum(boxes_a[:, 0], boxes_b[:, 0])
    height = np.minimum(boxes_a[:, 3], boxes_b[:, 3]) - np.maximum(boxes_a[:, 1], boxes_b[:, 1])
    intersection = np.where((width > 0) & (height > 0), width * height, 0.0)
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]) * (boxes_a[:, 3] - boxes_a[:, 1])
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]) * (boxes_b[:, 3] - boxes_b[:, 1])
    denominator = area_a if over_first else area_a + area_b - intersection
    return np.where(denominator > 0, intersection / np.where(denominator > 0, denominator, 1.0), 0.0)


def _slots(frame: np.ndarray, num_frames: int) -> tuple[np.ndarray, int]:
    """Position of each item in its frame (items in frame order) and the most items of a frame."""
    counts = np.bincount(frame, minlength=num_frames)
    starts = np.cumsum(counts) - counts
    return np.arange(frame.size) - starts[frame], int(counts.max(initial=0))


def _grid(values: np.ndarray, fill, frame: np.ndarray, slot: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A ``(frames, slots)`` array holding ``values`` at their frame and slot, ``fill`` elsewhere."""
    grid = np.full(shape, fill, dtype=np.asarray(values).dtype)
    grid[frame, slot] = values
    return grid


def _pairs(frame_a: np.ndarray, frame_b: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(index_a, index_b)`` of all pairs of items of one frame (items in frame order)."""
    counts_b = np.bincount(frame_b, minlength=num_frames)
    starts_b = np.cumsum(counts_b) - counts_b
    repeats = counts_b[frame_a]
    index_a = np.repeat(np.arange(frame_a.size), repeats)
    offsets = np.arange(index_a.size) - np.repeat(np.cumsum(repeats) - repeats, repeats)
    return index_a, starts_b[frame_a[index_a]] + offsets


class _Objects:
    """The objects of all frames whose (case-folded) type passes ``keep``, flattened in frame order."""

    def __init__(self, frames: Sequence[Sequence[KittiObject]], keep) -> None:
        entries = [(index, obj) for index, objects in enumerate(frames) for obj in objects if keep(obj.type.casefold())]
        objects = [obj for _, obj in entries]
        self.frame = np.array([index for index, _ in entries], dtype=np.int64)
        self.type = np.array([obj.type.casefold() for obj in objects], dtype=object)
        self.box2d = np.array([obj.box2d for obj in objects], dtype=np.float64).reshape(-1, 4)
        self.height = self.box2d[:, 3] - self.box2d[:, 1]
        self.occlusion = np.array([obj.occlusion for obj in objects], dtype=np.int64)
        self.truncation = np.array([obj.truncation for obj in objects], dtype=np.float64)
        self.score = np.array([obj.score or 0.0 for obj in objects], dtype=np.float64)
        self.objects = objects

    def boxes(self) -> torch.Tensor:
        return camera_boxes(self.objects)


def _true_positive_scores(
    overlap: np.ndarray, ignored_gt: np.ndarray, ignored_det: np.ndarray, score: np.ndarray, min_overlap: float
) -> np.ndarray:
    """Scores of the true positives when each object takes the free detection of highest score."""
    num_frames, _, num_gt_slots = overlap.shape
    frames = np.arange(num_frames)
    assigned = np.zeros(score.shape, dtype=bool)
    usable = ignored_det != -1
    scores = []
    for slot in range(num_gt_slots):
        candidate = usable & ~assigned & (overlap[:, :, slot] > min_overlap) & (ignored_gt[:, slot] != -1)[:, None]
        best = np.where(candidate, score, -np.inf).argmax(1)  # first of equal scores, as the devkit
        found = candidate.any(1)
        true = found & (ignored_gt[:, slot] == 0) & (ignored_det[frames, best] == 0)
        scores.append(score[frames[true], best[true]])
        assigned[frames[found], best[found]] = True
    return np.concatenate(scores) if scores else np.zeros(0)


def _counts_at(
    thresholds: np.ndarray,
    overlap: np.ndarray,
    ignored_gt: np.ndarray,
    ignored_det: np.ndarray,
    score: np.ndarray,
    in_dontcare: np.ndarray,
    min_overlap: float,
) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives ``(T,)`` at each threshold, all thresholds matched at once on
    ``(frames, T, slots)`` grids."""
    num_frames, num_det_slots, num_gt_slots = overlap.shape
    true_positives = np.zeros(thresholds.size, dtype=np.int64)
    false_positives = np.zeros(thresholds.size, dtype=np.int64)
    rows = max(1, _MATCH_CHUNK // max(1, thresholds.size * num_det_slots))
    for start in range(0, num_frames, rows):
        part = slice(start, start + rows)
        chunk_overlap, chunk_ignored_gt, chunk_ignored_det = overlap[part], ignored_gt[part], ignored_det[part]
        valid_det = (chunk_ignored_det == 0)[:, None, :]
        eligible = (score[part][:, None, :] >= thresholds[None, :, None]) & (chunk_ignored_det != -1)[:, None, :]
        assigned = np.zeros(eligible.shape, dtype=bool)
        threshold_axis = np.arange(thresholds.size)[None, :, None]
        for slot in range(num_gt_slots):
            slot_overlap = chunk_overlap[:, :, slot]
            matches = (slot_overlap > min_overlap) & (chunk_ignored_gt[:, slot] != -1)[:, None]
            frames = np.flatnonzero(matches.any(1))
            if frames.size == 0:
                continue
            # Work on the few detections that overlap this object enough, in index
            # order (the devkit's tie-breaks), padded to the most of any frame.
            matches = matches[frames]
            columns = np.argsort(~matches, axis=1, kind="stable")[:, : int(matches.sum(1).max())]
            gather = (frames[:, None, None], threshold_axis, columns[:, None, :])
            free = eligible[gather] & ~assigned[gather] & np.take_along_axis(matches, columns, 1)[:, None, :]
            column_state = chunk_ignored_det[frames[:, None], columns][:, None, :]
            # The valid detection of greatest overlap (first of equals); else the first ignored one.
            valid = free & (column_state == 0)
            has_valid = valid.any(2)
            column_overlap = np.take_along_axis(slot_overlap[frames], columns, 1)[:, None, :]
            best_valid = np.where(valid, column_overlap, -1.0).argmax(2)
            fallback = free & (column_state == 1)
            found = has_valid | fallback.any(2)
            chosen = np.where(has_valid, best_valid, fallback.argmax(2))
            true_positives += (has_valid & (chunk_ignored_gt[frames, slot] == 0)[:, None]).sum(0)
            frame_index, threshold_index = np.nonzero(found)
            chosen_column = columns[frame_index, chosen[frame_index, threshold_index]]
            assigned[frames[frame_index], threshold_index, chosen_column] = True
        unassigned = eligible & valid_det & ~assigned
        false_positives += (unassigned & ~in_dontcare[part][:, None, :]).sum((0, 2))
    return true_positives, false_positives


def _average_precision(
    overlap: np.ndarray,
    ignored_gt: np.ndarray,
    ignored_det: np.ndarray,
    score: np.ndarray,
    in_dontcare: np.ndarray,
    other_false_positives: np.ndarray,
    min_overlap: float,
) -> tuple[float, float]:
    """AP_R11 and AP_R40 in percent for one class, metric and difficulty.

    ``overlap`` and the detection grids hold the detections that can match an
    object; ``other_false_positives`` are the scores of the others that count.
    """
    num_valid = int((ignored_gt == 0).sum())
    if num_valid == 0 or score.shape[1] == 0:  # no true positive: no threshold, AP 0
        return 0.0, 0.0
    tp_scores = _true_positive_scores(overlap, ignored_gt, ignored_det, score, min_overlap)
    thresholds = np.array(recall_thresholds(tp_scores, num_valid))
    precision = np.zeros(NUM_RECALL_POINTS)
    if thresholds.size:
        true_positives, false_positives = _counts_at(
            thresholds, overlap, ignored_gt, ignored_det, score, in_dontcare, min_overlap
        )
        # The unmatchable detections are false positives wherever they pass the threshold.
        false_positives += other_false_positives.size - np.searchsorted(np.sort(other_false_positives), thresholds)
        counted = true_positives + false_positives
        # Every threshold is some true positive's score, so counted > 0 unless that
        # detection now goes to an ignored object; the devkit would divide by 0 there.
        precision[: thresholds.size] = np.where(counted > 0, true_positives / np.maximum(counted, 1), 0.0)
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(precision[::4].sum() / 11 * 100), float(precision[1:].sum() / 40 * 100)


def _is_list(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _check_inputs(
    ground_truth: Sequence[Sequence[KittiObject]],
    detections: Sequence[Sequence[KittiObject]],
    classes: Sequence[str],
    metrics: Sequence[str],
    min_overlaps: Mapping[str, float] | None,
) -> dict[str, float]:
    """The minimum overlap of each class, after checking every argument (ValueError naming it)."""
    # Bad input of any kind, type included, raises ValueError: callers catch one exception type.
    for name, frames in (("ground_truth", ground_truth), ("detections", detections)):
        if not _is_list(frames):
            raise ValueError(
                f"{name} must be a list with one list of KittiObject per frame, got {type(frames).__name__}"
            )
    if len(ground_truth) != len(detections):
        raise ValueError(
            f"ground_truth and detections must have one entry per frame, got {len(ground_truth)} and {len(detections)}"
        )
    for name, frames in (("ground_truth", ground_truth), ("detections", detections)):
        for frame_index, objects in enumerate(frames):
            if not _is_list(objects):
                raise ValueError(f"{name}[{frame_index}] must be a list of KittiObject, got {type(objects).__name__}")
            for object_index, obj in enumerate(objects):
                where = f"{name}[{frame_index}][{object_index}]"
                if not isinstance(obj, KittiObject):
                    raise ValueError(f"{where} must be a KittiObject, got {type(obj).__name__}")  # noqa: TRY004
                if name == "detections" and (obj.score is None or not math.isfinite(obj.score)):
                    raise ValueError(f"{where} needs a finite score, got {obj.score!r}")
    overlaps = dict(KITTI_MIN_OVERLAPS)
    if min_overlaps is not None:
        if not isinstance(min_overlaps, Mapping):
            raise ValueError(f"min_overlaps must map class names to overlaps, got {type(min_overlaps).__name__}")
        overlaps.update(min_overlaps)
    if isinstance(classes, str) or not classes:
        raise ValueError(f"classes must be a non-empty sequence of class names, got {classes!r}")
    for name in classes:
        if name not in overlaps:
            raise ValueError(
                f"unknown class {name!r}: expected one of {sorted(overlaps)} (or give it a min_overlaps entry)"
            )
        overlap = overlaps[name]
        if isinstance(overlap, bool) or not isinstance(overlap, (int, float)) or not 0 <= overlap < 1:
            raise ValueError(f"min_overlaps[{name!r}] must be a number in [0, 1), got {overlap!r}")
    if isinstance(metrics, str) or not metrics:
        raise ValueError(f"metrics must be a non-empty sequence drawn from {METRICS}, got {metrics!r}")
    for metric in metrics:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}: expected one of {METRICS}")
    return overlaps


def evaluate_kitti(
    ground_truth: Sequence[Sequence[KittiObject]],
    detections: Sequence[Sequence[KittiObject]],
    classes: Sequence[str] = CLASSES,
    metrics: Sequence[str] = ("bev", "3d"),
    min_overlaps: Mapping[str, float] | None = None,
    dontcare_all_metrics: bool = True,
) -> dict[str, dict[str, dict[str, list[float]]]]:
    r"""KITTI object-detection AP (R11 and R40, in percent) per class, metric and difficulty.

    See the module docstring for the protocol. Class names compare without
    regard to case; detections of classes not evaluated are dropped. The
    overlaps of all frames' (detection, object) pairs are computed in one call
    per class and metric; only the detections that overlap an object enough
    enter the matching, which runs for all frames and thresholds at once, one
    object slot at a time (a few numpy calls per object of the most crowded
    frame, no Python loop over frames or thresholds). Three hundred frames of
    20 objects and 100 detections take about a second on one CPU core.

    Args:
        ground_truth (list of list of KittiObject): the labels of each frame
            (camera frame, as read by :func:`pointkd.datasets.kitti.read_labels`),
            DontCare regions included.
        detections (list of list of KittiObject): the detections of each frame,
            each with a finite score.
        classes (sequence of str, optional): classes to evaluate.
            (default: ``("Car", "Pedestrian", "Cyclist")``)
        metrics (sequence of str, optional): overlaps to match with, from
            ``"bbox"`` (2D image boxes), ``"bev"``
            (:func:`~pointkd.detection.iou.kitti_bev_iou`) and ``"3d"``
            (:func:`~pointkd.detection.iou.kitti_3d_iou`). (default: ``("bev", "3d")``)
        min_overlaps (Mapping[str, float], optional): minimum overlap per class,
            over :data:`KITTI_MIN_OVERLAPS` (Car 0.7, Pedestrian 0.5, Cyclist
            0.5); a class in neither cannot be evaluated. (default: :obj:`None`)
        dontcare_all_metrics (bool, optional): ignore detections in DontCare
            regions for the BEV and 3D metrics too (for ``"bbox"`` they always
            are); :obj:`False` gives the devkits' numbers. (default: :obj:`True`)

    Returns:
        ``{class: {metric: {"R11": [easy, moderate, hard], "R40": [easy, moderate, hard]}}}``.
    """
    overlaps = _check_inputs(ground_truth, detections, classes, metrics, min_overlaps)
    num_frames = len(ground_truth)
    wanted = {name.casefold() for name in classes}
    gt = _Objects(ground_truth, lambda kind: kind != "dontcare")
    dontcare = _Objects(ground_truth, lambda kind: kind == "dontcare")
    det = _Objects(detections, lambda kind: kind in wanted)
    gt_boxes, det_boxes = gt.boxes(), det.boxes()
    for name, boxes in (("ground_truth", gt_boxes), ("detections", det_boxes)):
        if bool((boxes[:, 3:6] < 0).any()):
            raise ValueError(f"{name} must have non-negative dimensions (DontCare aside)")
    # Each detection's largest overlap with a DontCare region of its frame, over its own 2D area.
    dontcare_overlap = np.zeros(det.frame.size)
    det_index, dontcare_index = _pairs(det.frame, dontcare.frame, num_frames)
    np.maximum.at(
        dontcare_overlap, det_index, _box2d_overlap(det.box2d[det_index], dontcare.box2d[dontcare_index], True)
    )

    result: dict[str, dict[str, dict[str, list[float]]]] = {}
    for name in classes:
        key = name.casefold()
        neighbours = [other.casefold() for other in NEIGHBOUR_CLASSES.get(name, ())]
        gt_keep = np.flatnonzero((gt.type == key) | np.isin(gt.type, neighbours))
        det_keep = np.flatnonzero(det.type == key)
        pair_det, pair_gt = _pairs(det.frame[det_keep], gt.frame[gt_keep], num_frames)
        result[name] = {}
        for metric in metrics:
            if metric == "bbox":
                values = _box2d_overlap(det.box2d[det_keep[pair_det]], gt.box2d[gt_keep[pair_gt]])
            else:
                iou = kitti_bev_iou if metric == "bev" else kitti_3d_iou
                values = iou(det_boxes[det_keep[pair_det]], gt_boxes[gt_keep[pair_gt]], aligned=True).numpy()
            in_dontcare = dontcare_overlap[det_keep] > overlaps[name]
            if metric != "bbox" and not dontcare_all_metrics:
                in_dontcare[:] = False
            result[name][metric] = _class_scores(
                gt, gt_keep, key, det, det_keep, in_dontcare, (pair_det, pair_gt, values), overlaps[name], num_frames
            )
    return result


def _class_scores(
    gt: _Objects,
    gt_keep: np.ndarray,
    key: str,
    det: _Objects,
    det_keep: np.ndarray,
    in_dontcare: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
    min_overlap: float,
    num_frames: int,
) -> dict[str, list[float]]:
    """R11 and R40 per difficulty of one class and metric, from the overlaps of (detection, object) pairs."""
    pair_det, pair_gt, values = pairs
    gt_frame, det_frame = gt.frame[gt_keep], det.frame[det_keep]
    gt_slot, num_gt_slots = _slots(gt_frame, num_frames)
    # Only detections overlapping some object enough can be matched; the others
    # are counted apart, which keeps the matching grids small.
    matchable = np.zeros(det_keep.size, dtype=bool)
    matchable[pair_det[values > min_overlap]] = True
    matched = np.flatnonzero(matchable)
    det_slot, num_det_slots = _slots(det_frame[matched], num_frames)
    slot_of = np.full(det_keep.size, -1)
    slot_of[matched] = det_slot
    kept = matchable[pair_det]
    overlap = np.zeros((num_frames, num_det_slots, num_gt_slots))
    overlap[det_frame[pair_det[kept]], slot_of[pair_det[kept]], gt_slot[pair_gt[kept]]] = values[kept]
    det_shape = (num_frames, num_det_slots)
    score = _grid(det.score[det_keep[matched]], -np.inf, det_frame[matched], det_slot, det_shape)
    dontcare = _grid(in_dontcare[matched], False, det_frame[matched], det_slot, det_shape)
    det_height = np.abs(det.height[det_keep])

    scores: dict[str, list[float]] = {"R11": [], "R40": []}
    for level in range(len(DIFFICULTY_NAMES)):
        # The devkit's inequalities: objects must be taller than the minimum
        # height, detections at least as tall.
        meets = (
            (gt.occlusion[gt_keep] <= DIFFICULTY_MAX_OCCLUSION[level])
            & (gt.truncation[gt_keep] <= DIFFICULTY_MAX_TRUNCATION[level])
            & (gt.height[gt_keep] > DIFFICULTY_MIN_HEIGHT[level])
        )
        valid = (gt.type[gt_keep] == key) & meets
        ignored_gt = _grid(np.where(valid, 0, 1), -1, gt_frame, gt_slot, (num_frames, num_gt_slots))
        low = det_height < DIFFICULTY_MIN_HEIGHT[level]
        ignored_det = _grid(np.where(low[matched], 1, 0), -1, det_frame[matched], det_slot, det_shape)
        other_false_positives = det.score[det_keep[~matchable & ~low & ~in_dontcare]]
        r11, r40 = _average_precision(
            overlap, ignored_gt, ignored_det, score, dontcare, other_false_positives, min_overlap
        )
        scores["R11"].append(r11)
        scores["R40"].append(r40)
    return scores


def format_kitti_results(result: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]]) -> str:
    """A text table of :func:`evaluate_kitti`'s result, one row per class, metric and recall sampling."""
    header = f"{'class':<12}{'metric':<8}{'AP':<6}" + "".join(f"{name:>10}" for name in DIFFICULTY_NAMES)
    lines = [header, "-" * len(header)]
    for name, by_metric in result.items():
        for metric, by_points in by_metric.items():
            for points, values in by_points.items():
                lines.append(f"{name:<12}{metric:<8}{points:<6}" + "".join(f"{value:>10.2f}" for value in values))
    return "\n".join(lines)


__all__ = [
    "KITTI_MIN_OVERLAPS",
    "METRICS",
    "NEIGHBOUR_CLASSES",
    "NUM_RECALL_POINTS",
    "camera_boxes",
    "evaluate_kitti",
    "format_kitti_results",
    "recall_thresholds",
]
