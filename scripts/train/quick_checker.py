"""A quick pixel checker for in-training evaluation only (the project's checker is `mixdq eval`).

Follows the contract's checker rules (trained-model.md, "Evaluation"): nearest palette colour per
pixel; per object colour = more than 50 % of a disc of 0.35 r at the expected centre has the expected
colour; position = the centroid of that colour lies in the expected cell; shape and size = the best
IoU over templates (4 shapes x 2 sizes x 25 offsets of +-4 px) inside the cell; background = the
majority colour of the 2-px border.
"""
from __future__ import annotations

import numpy as np

import synthetic_shapes as shapes

PALETTE_NAMES = list(dict.fromkeys(list(shapes.COLOURS) + list(shapes.BACKGROUNDS)))
PALETTE = np.array([shapes.COLOURS.get(n, shapes.BACKGROUNDS.get(n)) for n in PALETTE_NAMES], dtype=np.float32)
# Cell boundaries halfway between the cell centres 26, 64, 102.
BOUNDS = (0, 45, 83, shapes.CANVAS)
OFFSETS = [(dx, dy) for dy in (-4, -2, 0, 2, 4) for dx in (-4, -2, 0, 2, 4)]
ATTRIBUTES = ("colour", "position", "shape", "size")


def palette_indices(image: np.ndarray) -> np.ndarray:
    distances = ((image[:, :, None, :].astype(np.float32) - PALETTE[None, None]) ** 2).sum(-1)
    return distances.argmin(-1)


def _cell_slice(cell):
    return (slice(BOUNDS[cell[1]], BOUNDS[cell[1] + 1]), slice(BOUNDS[cell[0]], BOUNDS[cell[0] + 1]))


_TEMPLATES = {}


def _templates(cell):
    if cell not in _TEMPLATES:
        region = _cell_slice(cell)
        cx, cy = shapes.CELL_CENTRES[cell[0]], shapes.CELL_CENTRES[cell[1]]
        _TEMPLATES[cell] = [(shape, size, shapes.shape_mask(shape, cx + dx, cy + dy, radius)[region])
                            for shape in shapes.SHAPES for size, radius in shapes.SIZES.items() for dx, dy in OFFSETS]
    return _TEMPLATES[cell]


def check(image: np.ndarray, objects, background: str) -> dict:
    """Per-attribute booleans for one image: background and, per attribute, all objects right."""
    labels = palette_indices(image)
    border = np.concatenate([labels[:2].ravel(), labels[-2:].ravel(), labels[:, :2].ravel(), labels[:, -2:].ravel()])
    result = {"background": PALETTE_NAMES[np.bincount(border, minlength=len(PALETTE_NAMES)).argmax()] == background}
    verdicts = {a: True for a in ATTRIBUTES}
    ys, xs = np.mgrid[0:shapes.CANVAS, 0:shapes.CANVAS]
    for obj in objects:
        index = PALETTE_NAMES.index(obj.colour)
        same = labels == index
        cx, cy = shapes.CELL_CENTRES[obj.cell[0]], shapes.CELL_CENTRES[obj.cell[1]]
        disc = (xs - cx) ** 2 + (ys - cy) ** 2 <= (0.35 * shapes.SIZES[obj.size]) ** 2
        verdicts["colour"] &= bool(same[disc].mean() > 0.5)
        if same.any():
            mx, my = xs[same].mean(), ys[same].mean()
            col = int(np.searchsorted(BOUNDS, mx, side="right") - 1)
            row = int(np.searchsorted(BOUNDS, my, side="right") - 1)
            verdicts["position"] &= (min(col, 2), min(row, 2)) == obj.cell
        else:
            verdicts["position"] = False
        inside = same[_cell_slice(obj.cell)]
        best, best_iou = None, -1.0
        for shape, size, template in _templates(obj.cell):
            union = (inside | template).sum()
            iou = (inside & template).sum() / union if union else 0.0
            if iou > best_iou:
                best, best_iou = (shape, size), iou
        verdicts["shape"] &= best[0] == obj.shape
        verdicts["size"] &= best[1] == obj.size
    result.update(verdicts)
    result["all"] = all(result.values())
    return result


def accuracy(images, scenes) -> dict:
    rows = [check(image, objects, background) for image, (objects, background) in zip(images, scenes)]
    return {k: float(np.mean([r[k] for r in rows])) for k in ("all", "background") + ATTRIBUTES}


if __name__ == "__main__":
    scenes = shapes.heldout_scenes()
    print("ground truth", accuracy([shapes.render(o, b) for o, b in scenes], scenes))
    rng = np.random.default_rng(5)
    jittered = [shapes.training_scene(rng) for _ in range(100)]
    print("jittered truth", accuracy([shapes.render(o, b) for o, b in jittered], [( [x.without_jitter() for x in o], b) for o, b in jittered]))
    wrong = scenes[1:] + scenes[:1]
    print("wrong captions", accuracy([shapes.render(o, b) for o, b in scenes], wrong))
