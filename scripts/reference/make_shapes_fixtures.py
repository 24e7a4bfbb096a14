#!/usr/bin/env python3
"""Known-answer fixtures for the synthetic-shapes caption checker (`mixdq eval --captions`).

Renders a handful of scenes with the project's data-set renderer, scripts/train/synthetic_shapes.py
(imported, not copied), into Tests/Fixtures/synthetic_shapes/:

  images/<i>.png          i = 0..7: held-out scenes 0-2 (one object) and 25-27 (two objects), drawn
                          exactly; then two jittered training scenes (seeded), as training draws them.
  captions.txt            the true caption of image i on line i+1 (jittered scenes: without jitter,
                          as the caption grammar has none)      -> every attribute right
  wrong_captions.txt      the caption of another image, chosen so that it does not describe this image
                          (no caption whose objects and background all appear in it) -> "all" wrong
  one_wrong_captions.txt  the true caption with one attribute changed, cycling background, size, shape,
                          colour, position over the images      -> see expected.json
  expected.json           the image-level verdicts each captions file must give, per image.

Expected verdicts of one_wrong_captions.txt follow from the contract's checker rules
(shared/reference/trained-model.md, "Evaluation"), which find an object by its colour:
  background -> only background fails;  size -> only size;  shape -> only shape;
  colour (changed to a colour absent from the image) -> colour, position, size and shape fail
      (no pixel of that colour: no centroid, no mask to match templates against);
  position (moved to an empty cell away from the other objects) -> colour (the disc at the new cell
      centre shows background), position, size and shape (nothing of that colour in the new cell) fail.
"all" fails in every case.

Needs numpy and pillow only (the reference venv has both). Deterministic.
Run from the repo root: .venv-reference/bin/python scripts/reference/make_shapes_fixtures.py
"""
import json
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import synthetic_shapes as shapes  # noqa: E402  (scripts/train/synthetic_shapes.py)

OUT = os.path.join("Tests", "Fixtures", "synthetic_shapes")
ATTRIBUTES = ("background", "colour", "position", "size", "shape")
CHANGES = ("background", "size", "shape", "colour", "position")


def scenes():
    heldout = shapes.heldout_scenes()
    picked = [heldout[i] for i in (0, 1, 2, 25, 26, 27)]
    rng = np.random.default_rng(2026)
    jittered = [shapes.training_scene(rng) for _ in range(2)]
    return picked + jittered


def describes(caption_scene, scene):
    """Whether every object and the background of caption_scene appear exactly in scene."""
    objects, background = caption_scene
    present = {(o.size, o.colour, o.shape, o.cell) for o in scene[0]}
    return background == scene[1] and all((o.size, o.colour, o.shape, o.cell) in present for o in objects)


def changed(scene, attribute, index):
    """The scene with one attribute of object `index` (or the background) changed."""
    objects = [o.without_jitter() for o in scene[0]]
    background = scene[1]
    used_colours = {o.colour for o in objects}
    o = objects[index]
    if attribute == "background":
        background = next(b for b in shapes.BACKGROUNDS if b != background and b not in used_colours)
        return objects, background
    if attribute == "size":
        new = shapes.ShapeObject("small" if o.size == "large" else "large", o.colour, o.shape, o.cell)
    elif attribute == "shape":
        new = shapes.ShapeObject(o.size, o.colour, shapes.SHAPES[(shapes.SHAPES.index(o.shape) + 1) % 4], o.cell)
    elif attribute == "colour":
        colour = next(c for c in shapes.COLOURS if c not in used_colours and c != background)
        new = shapes.ShapeObject(o.size, colour, o.shape, o.cell)
    else:  # position: the empty cell farthest (Chebyshev) from every object
        cells = [(c, r) for r in range(3) for c in range(3)]
        free = [cell for cell in cells if all(cell != x.cell for x in objects)]
        cell = max(free, key=lambda c: (min(max(abs(c[0] - x.cell[0]), abs(c[1] - x.cell[1])) for x in objects), -cells.index(c)))
        new = shapes.ShapeObject(o.size, o.colour, o.shape, cell)
    objects[index] = new
    return objects, background


def expected_one_wrong(attribute):
    fails = {"background": {"background"}, "size": {"size"}, "shape": {"shape"},
             "colour": {"colour", "position", "size", "shape"},
             "position": {"colour", "position", "size", "shape"}}[attribute]
    verdict = {a: a not in fails for a in ATTRIBUTES}
    verdict["all"] = False
    return verdict


def main():
    os.makedirs(os.path.join(OUT, "images"), exist_ok=True)
    all_scenes = scenes()
    truth, wrong, one_wrong, expected = [], [], [], {"captions.txt": [], "wrong_captions.txt": [],
                                                    "one_wrong_captions.txt": []}
    for i, scene in enumerate(all_scenes):
        objects, background = scene
        Image.fromarray(shapes.render(objects, background), "RGB").save(os.path.join(OUT, "images", f"{i}.png"),
                                                                         optimize=True)
        clean = ([o.without_jitter() for o in objects], background)
        truth.append(shapes.caption(*clean))
        expected["captions.txt"].append({a: True for a in ATTRIBUTES + ("all",)})

        other = next(all_scenes[(i + k) % len(all_scenes)] for k in range(1, len(all_scenes))
                     if not describes(([o.without_jitter() for o in all_scenes[(i + k) % len(all_scenes)][0]],
                                       all_scenes[(i + k) % len(all_scenes)][1]), clean))
        wrong.append(shapes.caption([o.without_jitter() for o in other[0]], other[1]))
        expected["wrong_captions.txt"].append({"all": False})

        attribute = CHANGES[i % len(CHANGES)]
        index = i % len(objects)
        modified = changed(scene, attribute, index)
        one_wrong.append(shapes.caption(*modified))
        assert shapes.parse_caption(one_wrong[-1]) == (modified[0], modified[1])
        entry = expected_one_wrong(attribute)
        entry["changed"] = attribute if attribute == "background" else f"object {index + 1} {attribute}"
        expected["one_wrong_captions.txt"].append(entry)

    for name, lines in (("captions.txt", truth), ("wrong_captions.txt", wrong), ("one_wrong_captions.txt", one_wrong)):
        with open(os.path.join(OUT, name), "w") as f:
            f.write("".join(line + "\n" for line in lines))
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"generator": "scripts/reference/make_shapes_fixtures.py", "images": len(all_scenes),
                   "verdicts": expected}, f, indent=1)
        f.write("\n")
    for i in range(len(all_scenes)):
        print(i, truth[i], "|", one_wrong[i], "|", expected["one_wrong_captions.txt"][i]["changed"])


if __name__ == "__main__":
    main()
