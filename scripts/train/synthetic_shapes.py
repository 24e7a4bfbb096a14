"""The project's synthetic captioned-shapes domain (the data-set contract of trained-model.md).

Deterministic renderer and caption generator; numpy only, so test-fixture scripts can import it
without torch. Public API (stable, other scripts depend on it):

    sample_scene(rng, jitter=True) -> (objects, background)
    render(objects, background, size=128) -> uint8 array (size, size, 3)
    caption(objects, background) -> str
    parse_caption(text) -> (objects, background)       # inverse of caption (no jitter)
    heldout_scenes() -> list of (objects, background)  # the fixed 50, never trained on
    scene_key(objects, background) -> hashable          # order-free identity, for exclusion

Pixel convention: pixel (x, y) covers the point (x, y) itself (integer sample positions), x to the
right, y down; a pixel belongs to a shape when its sample point lies inside the shape (hard edges,
so every pixel has an exact palette colour).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CANVAS = 128
BACKGROUNDS = {"white": (245, 245, 245), "black": (15, 15, 15), "gray": (128, 128, 128)}
COLOURS = {
    "red": (220, 30, 30), "green": (30, 170, 50), "blue": (30, 70, 230), "yellow": (245, 225, 30),
    "purple": (140, 40, 190), "orange": (250, 140, 20), "white": (245, 245, 245), "black": (15, 15, 15),
}
SIZES = {"small": 11.0, "large": 19.0}
SHAPES = ("circle", "square", "triangle", "star")
CELL_CENTRES = (26, 64, 102)
POSITIONS = {
    (0, 0): "at the top left", (1, 0): "at the top", (2, 0): "at the top right",
    (0, 1): "on the left", (1, 1): "in the center", (2, 1): "on the right",
    (0, 2): "at the bottom left", (1, 2): "at the bottom", (2, 2): "at the bottom right",
}
ONE_OBJECT_PROBABILITY = 0.6
CENTRE_JITTER = 3.0
RADIUS_JITTER = 1.0
HELDOUT_SEED = 424242
HELDOUT_COUNT_PER_KIND = 25


@dataclass(frozen=True)
class ShapeObject:
    size: str            # key of SIZES
    colour: str          # key of COLOURS
    shape: str           # one of SHAPES
    cell: tuple          # (column, row) on the 3x3 grid
    dx: float = 0.0      # centre jitter in pixels
    dy: float = 0.0
    dr: float = 0.0      # radius jitter in pixels

    @property
    def centre(self) -> tuple:
        return CELL_CENTRES[self.cell[0]] + self.dx, CELL_CENTRES[self.cell[1]] + self.dy

    @property
    def radius(self) -> float:
        return SIZES[self.size] + self.dr

    def without_jitter(self) -> "ShapeObject":
        return ShapeObject(self.size, self.colour, self.shape, self.cell)


def _polygon_mask(xs: np.ndarray, ys: np.ndarray, vertices: list) -> np.ndarray:
    """Even-odd point-in-polygon test for every sample point."""
    inside = np.zeros(xs.shape, dtype=bool)
    count = len(vertices)
    for i in range(count):
        x1, y1 = vertices[i]
        x2, y2 = vertices[(i + 1) % count]
        if y1 == y2:
            continue
        crosses = (y1 > ys) != (y2 > ys)
        x_at = x1 + (ys - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (xs < x_at)
    return inside


def _ring(cx: float, cy: float, radii: list, start_degrees: float) -> list:
    step = 360.0 / len(radii)
    return [(cx + r * math.cos(math.radians(start_degrees + i * step)),
             cy + r * math.sin(math.radians(start_degrees + i * step))) for i, r in enumerate(radii)]


def shape_mask(shape: str, cx: float, cy: float, r: float, size: int = CANVAS) -> np.ndarray:
    """Boolean (size, size) mask of one shape centred at (cx, cy) with nominal radius r."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    if shape == "circle":
        return (xs - cx) ** 2 + (ys - cy) ** 2 <= (0.92 * r) ** 2
    if shape == "square":
        half = 0.86 * r
        return (np.abs(xs - cx) <= half) & (np.abs(ys - cy) <= half)
    if shape == "triangle":
        return _polygon_mask(xs, ys, _ring(cx, cy, [r, r, r], -90.0))
    if shape == "star":
        return _polygon_mask(xs, ys, _ring(cx, cy, [r, 0.45 * r] * 5, -90.0))
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def render(objects, background: str, size: int = CANVAS) -> np.ndarray:
    """The image of a scene: uint8 (size, size, 3); objects drawn in caption order."""
    image = np.empty((size, size, 3), dtype=np.uint8)
    image[:] = BACKGROUNDS[background]
    for obj in objects:
        cx, cy = obj.centre
        image[shape_mask(obj.shape, cx, cy, obj.radius, size)] = COLOURS[obj.colour]
    return image


def caption(objects, background: str) -> str:
    parts = [f"a {o.size} {o.colour} {o.shape} {POSITIONS[o.cell]}" for o in objects]
    return " and ".join(parts) + f", {background} background"


_PHRASE_TO_CELL = {phrase: cell for cell, phrase in POSITIONS.items()}


def parse_caption(text: str):
    """Inverse of caption(): (objects without jitter, background). ValueError on other text."""
    body, sep, tail = text.strip().rpartition(", ")
    if not sep or not tail.endswith(" background") or tail[: -len(" background")] not in BACKGROUNDS:
        raise ValueError(f"caption {text!r}: expected ', <white|black|gray> background' at the end")
    objects = []
    for part in body.split(" and "):
        words = part.split(" ", 4)
        if len(words) != 5 or words[0] != "a" or words[1] not in SIZES or words[2] not in COLOURS \
                or words[3] not in SHAPES or words[4] not in _PHRASE_TO_CELL:
            raise ValueError(f"caption {text!r}: cannot read object {part!r}")
        objects.append(ShapeObject(words[1], words[2], words[3], _PHRASE_TO_CELL[words[4]]))
    return objects, tail[: -len(" background")]


def scene_key(objects, background: str):
    """Identity of a scene regardless of object order and jitter."""
    return background, tuple(sorted((o.size, o.colour, o.shape, o.cell) for o in objects))


def sample_scene(rng: np.random.Generator, jitter: bool = True, object_count: int | None = None):
    """A random scene of the contract: 1 object (60 %) or 2, distinct colours and cells."""
    background = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
    if object_count is None:
        object_count = 1 if rng.random() < ONE_OBJECT_PROBABILITY else 2
    colours = [c for c in COLOURS if c != background]
    picked_colours = rng.choice(len(colours), size=object_count, replace=False)
    picked_cells = rng.choice(9, size=object_count, replace=False)
    objects = []
    for colour_index, cell_index in zip(picked_colours, picked_cells):
        size = list(SIZES)[rng.integers(len(SIZES))]
        shape = SHAPES[rng.integers(len(SHAPES))]
        dx, dy, dr = (rng.uniform(-CENTRE_JITTER, CENTRE_JITTER), rng.uniform(-CENTRE_JITTER, CENTRE_JITTER),
                      rng.uniform(-RADIUS_JITTER, RADIUS_JITTER)) if jitter else (0.0, 0.0, 0.0)
        objects.append(ShapeObject(size, colours[colour_index], shape,
                                   (int(cell_index) % 3, int(cell_index) // 3), float(dx), float(dy), float(dr)))
    return objects, background


def heldout_scenes():
    """The fixed held-out set: 25 one-object then 25 two-object scenes (no jitter), distinct."""
    rng = np.random.default_rng(HELDOUT_SEED)
    scenes, keys = [], set()
    for count in (1, 2):
        made = 0
        while made < HELDOUT_COUNT_PER_KIND:
            objects, background = sample_scene(rng, jitter=False, object_count=count)
            key = scene_key(objects, background)
            if key in keys:
                continue
            keys.add(key)
            scenes.append((objects, background))
            made += 1
    return scenes


HELDOUT_KEYS = frozenset(scene_key(o, b) for o, b in heldout_scenes())


def training_scene(rng: np.random.Generator):
    """A jittered training scene that is not one of the held-out scenes."""
    while True:
        objects, background = sample_scene(rng, jitter=True)
        if scene_key(objects, background) not in HELDOUT_KEYS:
            return objects, background


CALIBRATION_SEED = 2024
CALIBRATION_COUNT = 64


def calibration_captions():
    """Training-domain captions (never held out) for calib-data / ptq on the trained model."""
    rng = np.random.default_rng(CALIBRATION_SEED)
    return [caption(*training_scene(rng)) for _ in range(CALIBRATION_COUNT)]


if __name__ == "__main__":
    # Regenerates scripts/train/heldout_captions.txt and assets/shapes/calibration_captions.txt.
    import pathlib
    here = pathlib.Path(__file__).resolve()
    path = here.with_name("heldout_captions.txt")
    path.write_text("".join(caption(o, b) + "\n" for o, b in heldout_scenes()))
    print(f"wrote {path}")
    calib = here.parents[2] / "assets" / "shapes" / "calibration_captions.txt"
    calib.parent.mkdir(parents=True, exist_ok=True)
    calib.write_text("".join(c + "\n" for c in calibration_captions()))
    print(f"wrote {calib}")
