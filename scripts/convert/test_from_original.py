"""Tests of from_original.py (run by hand with the reference venv; CI has no torch):

    .venv-reference/bin/python scripts/convert/test_from_original.py

Round trips on the committed fixtures (Tests/Fixtures/original, made by
scripts/reference/make_original_artefact_fixtures.py), and every class of bad input with its message.
"""
from __future__ import annotations

import collections
import contextlib
import io
import sys
import tempfile
import unittest
from pathlib import Path

import h5py
import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import from_original  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "Tests" / "Fixtures" / "original"


def quantizer(delta, zero, alpha=None):
    return [collections.OrderedDict(delta_list=torch.tensor(delta, dtype=torch.float32),
                                    zero_point_list=torch.tensor(zero, dtype=torch.float32),
                                    delta=None, zero_point=None, alpha=alpha), collections.OrderedDict()]


def small_checkpoint():
    """One conv layer (2 output channels) and its activation quantizer, rows for bits [2, 4, 8]."""
    return {
        "conv_in.weight_quantizer": quantizer([[[[[0.5]]], [[[0.25]]]], [[[[0.1]]], [[[0.05]]]], [[[[0.01]]], [[[0.005]]]]],
                                              np.zeros((3, 2, 1, 1, 1)).tolist()),
        "conv_in.act_quantizer": quantizer(np.array([1.0, 0.2, 0.01]).reshape(3, 1, 1, 1, 1).tolist(),
                                           np.array([1.0, 7.0, 128.0]).reshape(3, 1, 1, 1, 1).tolist()),
    }


class ConverterTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def convert(self, kind: str, obj, *extra) -> tuple[int, str]:
        src = self.dir / f"in.{'pth' if kind == 'ckpt' else 'pt'}"
        torch.save(obj, src)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = from_original.main([kind, f"--{kind}", str(src), "--out", str(self.dir / "out" / "file"), *extra])
        return rc, err.getvalue()

    def assertFails(self, kind, obj, *mentions, extra=()):
        rc, err = self.convert(kind, obj, *extra)
        self.assertEqual(rc, 1, err)
        for m in mentions:
            self.assertIn(m, err)
        self.assertFalse((self.dir / "out" / "file").exists(), "no output on error")
        self.assertFalse((self.dir / "out" / "file.partial").exists(), "no partial output left")


class CheckpointTests(ConverterTestCase):
    BITS = ("--bit-widths", "2,4,8", "--weight-sym", "true")

    def test_fixture_round_trip(self):
        """The committed source checkpoint, written in the original's layout by the fixture script's
        reverse mapping (conv weights rank 4 by layer name here), converts back unchanged."""
        sys.path.insert(0, str(FIXTURES.parents[2] / "scripts" / "reference"))
        from make_original_artefact_fixtures import original_checkpoint

        source = FIXTURES / "ptq_source" / "ckpt.safetensors"
        convs = {"conv", "conv1", "conv2", "conv_in", "conv_out", "conv_shortcut"}
        ndim = {k.rsplit(".", 2)[0]: 4 if k.rsplit(".", 2)[0].rsplit(".", 1)[-1] in convs else 2 for k in load_file(str(source))}
        torch.save(original_checkpoint(source, ndim, [8]), self.dir / "ckpt.pth")
        out = self.dir / "ckpt.safetensors"
        with contextlib.redirect_stdout(io.StringIO()):
            rc = from_original.main(["ckpt", "--ckpt", str(self.dir / "ckpt.pth"), "--config", str(FIXTURES / "config.yaml"),
                                     "--out", str(out)])
        self.assertEqual(rc, 0)
        a, b = load_file(str(source)), load_file(str(out))
        self.assertEqual(sorted(a), sorted(b))
        worst = max(float(np.max(np.abs(a[k] - b[k]))) for k in a)
        print(f"\ncheckpoint round trip: {len(a)} tensors, max abs diff {worst}")
        self.assertEqual(worst, 0.0)
        self.assertTrue((self.dir / "config.yaml").exists(), "the config is copied beside the output")

    def test_rows_are_sorted_by_bit_width(self):
        ckpt = small_checkpoint()  # rows now mean bits 8, 4, 2
        ckpt["conv_in.act_quantizer"][0]["zero_point_list"] = torch.tensor([128.0, 7.0, 1.0]).reshape(3, 1, 1, 1, 1)
        rc, err = self.convert("ckpt", ckpt, "--bit-widths", "8,4,2", "--weight-sym", "false")
        self.assertEqual(rc, 0, err)
        out = load_file(str(self.dir / "out" / "file"))
        np.testing.assert_array_equal(out["conv_in.act_quantizer.delta_list"], np.array([0.01, 0.2, 1.0], dtype=np.float32))
        np.testing.assert_array_equal(out["conv_in.act_quantizer.zero_point_list"], np.array([1, 7, 128], dtype=np.float32))
        self.assertEqual(out["conv_in.weight_quantizer.delta_list"].shape, (3, 2))
        with safe_open(str(self.dir / "out" / "file"), "np") as f:
            self.assertEqual(f.metadata()["bit_widths"], "2,4,8")
            self.assertEqual(f.metadata()["weight_symmetric"], "false")

    def test_config_without_mixed_precision_uses_delta(self):
        """lcm_lora.yaml has no mixed_precision: the quantizers hold `delta` / `zero_point` only."""
        ckpt = {
            "conv_in.weight_quantizer": [collections.OrderedDict(delta=torch.tensor([0.5, 0.25]).reshape(2, 1, 1, 1),
                                                                 zero_point=torch.tensor([3.0, 9.0]).reshape(2, 1, 1, 1), alpha=None),
                                         collections.OrderedDict()],
            "conv_in.act_quantizer": [collections.OrderedDict(delta=torch.tensor(0.1).reshape(1, 1, 1, 1),
                                                              zero_point=torch.tensor(17.0).reshape(1, 1, 1, 1), alpha=None),
                                      collections.OrderedDict()],
        }
        config = self.dir / "config.yaml"
        config.write_text((FIXTURES.parents[2] / "configs" / "lcm_lora.yaml").read_text())
        rc, err = self.convert("ckpt", ckpt, "--config", str(config))
        self.assertEqual(rc, 0, err)
        out = load_file(str(self.dir / "out" / "file"))
        np.testing.assert_array_equal(out["conv_in.weight_quantizer.zero_point_list"], np.array([[3.0, 9.0]], dtype=np.float32))
        np.testing.assert_array_equal(out["conv_in.act_quantizer.delta_list"], np.array([0.1], dtype=np.float32))
        with safe_open(str(self.dir / "out" / "file"), "np") as f:
            self.assertEqual(f.metadata()["bit_widths"], "8")
            self.assertEqual(f.metadata()["weight_symmetric"], "false")
        (self.dir / "out" / "file").unlink()
        del ckpt["conv_in.act_quantizer"][0]["delta"]
        self.assertFails("ckpt", ckpt, "conv_in.act_quantizer", "no delta", "without mixed_precision", extra=("--config", str(config)))

    def test_unused_attention_quantizers_are_skipped(self):
        ckpt = small_checkpoint()
        ckpt["mid_block.attentions.0.transformer_blocks.0.attn1.act_quantizer_q"] = [
            collections.OrderedDict(delta_list=torch.tensor([]), zero_point_list=torch.tensor([]), delta=None, zero_point=None, alpha=None),
            collections.OrderedDict()]
        rc, err = self.convert("ckpt", ckpt, *self.BITS)
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(load_file(str(self.dir / "out" / "file"))), [
            "conv_in.act_quantizer.delta_list", "conv_in.act_quantizer.zero_point_list",
            "conv_in.weight_quantizer.delta_list", "conv_in.weight_quantizer.zero_point_list"])

    def test_bad_checkpoints_name_the_quantizer(self):
        def edited(name, **buffers):
            c = small_checkpoint()
            c[name][0].update(buffers)
            return c

        self.assertFails("ckpt", [1, 2], "holds a list", extra=self.BITS)
        self.assertFails("ckpt", {"conv_in.weight_quantizer": {"delta_list": 1}}, "conv_in.weight_quantizer", "[buffers dict, parameters dict]",
                         extra=self.BITS)
        c = small_checkpoint()
        del c["conv_in.act_quantizer"][0]["delta_list"]
        self.assertFails("ckpt", c, "conv_in.act_quantizer", "no delta_list", extra=self.BITS)
        self.assertFails("ckpt", edited("conv_in.act_quantizer", delta_list=torch.ones(2, 1, 1, 1, 1),
                                        zero_point_list=torch.zeros(2, 1, 1, 1, 1)),
                         "conv_in.act_quantizer", "[2, 1, 1, 1, 1]", "expected [3, ...]", extra=self.BITS)
        self.assertFails("ckpt", edited("conv_in.weight_quantizer", delta_list=torch.ones(3, 2, 2), zero_point_list=torch.zeros(3, 2, 2)),
                         "conv_in.weight_quantizer", "per output channel", extra=self.BITS)
        self.assertFails("ckpt", edited("conv_in.weight_quantizer", zero_point_list=torch.ones(3, 2, 1, 1, 1)),
                         "conv_in.weight_quantizer", "symmetric weights need 0", extra=self.BITS)
        self.assertFails("ckpt", edited("conv_in.act_quantizer", zero_point_list=torch.full((3, 1, 1, 1, 1), 300.0)),
                         "conv_in.act_quantizer", "must lie in 0...3", extra=self.BITS)
        self.assertFails("ckpt", edited("conv_in.act_quantizer", delta_list=torch.zeros(3, 1, 1, 1, 1)),
                         "conv_in.act_quantizer", "not positive and finite", extra=self.BITS)
        self.assertFails("ckpt", edited("conv_in.weight_quantizer", alpha=torch.zeros(2)), "conv_in.weight_quantizer", "AdaRound",
                         extra=self.BITS)
        c = small_checkpoint()
        c["conv_in.weight_quantizer_x"] = c["conv_in.weight_quantizer"]
        self.assertFails("ckpt", c, "conv_in.weight_quantizer_x", "not a quantizer", extra=self.BITS)
        c = small_checkpoint()
        del c["conv_in.act_quantizer"]
        self.assertFails("ckpt", c, "conv_in", "no act_quantizer", extra=self.BITS)
        c = small_checkpoint()
        c["down_blocks.0.attentions.0.transformer_blocks.0.attn2.act_quantizer_k"] = quantizer([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
        self.assertFails("ckpt", c, "attn2.act_quantizer_k", "attention", extra=self.BITS)
        self.assertFails("ckpt", small_checkpoint(), "--config")  # no config beside it, no flags

    def test_not_a_torch_file(self):
        src = self.dir / "ckpt.pth"
        src.write_text("model.conv_in: 8\n")
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = from_original.main(["ckpt", "--ckpt", str(src), "--out", str(self.dir / "o.safetensors"), *self.BITS])
        self.assertEqual(rc, 1)
        self.assertIn(str(src), err.getvalue())
        self.assertIn("torch.load", err.getvalue())


class CalibrationTests(ConverterTestCase):
    @staticmethod
    def small(rows=2, prompts=2, ts_rows=None, steps=1):
        g = torch.Generator().manual_seed(0)
        return {
            "prompts": [f"prompt {i}" for i in range(prompts)],
            "ts": torch.full((steps, ts_rows or rows), 999.0),
            "xs": torch.randn(steps, rows, 4, 2, 2, generator=g),
            "outputs": torch.randn(steps, rows, 4, 2, 2, generator=g),
            "text_embs": torch.randn(steps, rows, 77, 8, generator=g),
            "added_cond_kwargs": {"text_embeds": torch.randn(steps, rows, 5, generator=g), "time_ids": torch.zeros(steps, rows, 6)},
        }

    def test_fixture_round_trip(self):
        out = self.dir / "calib.h5"
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(from_original.main(["calib", "--calib", str(FIXTURES / "calib.pt"), "--out", str(out)]), 0)
        with h5py.File(FIXTURES / "calib_source.h5") as a, h5py.File(out) as b:
            for key in ("xs", "outputs", "ts", "text_embs", "added_cond_kwargs/text_embeds", "added_cond_kwargs/time_ids"):
                np.testing.assert_array_equal(a[key][()], b[key][()], err_msg=key)
            self.assertEqual(list(a["prompts"][()]), list(b["prompts"][()]))

    def test_guidance_rows_get_their_timesteps(self):
        rc, err = self.convert("calib", self.small(rows=4, prompts=2, ts_rows=2))
        self.assertEqual(rc, 0, err)
        with h5py.File(self.dir / "out" / "file") as f:
            self.assertEqual(f["ts"].shape, (1, 4))
            self.assertTrue(np.all(f["ts"][()] == 999.0))
            self.assertIn("unconditional", f.attrs["rows"])

    def test_older_files_without_outputs_convert(self):
        data = self.small()
        del data["outputs"]
        rc, err = self.convert("calib", data)
        self.assertEqual(rc, 0, err)
        with h5py.File(self.dir / "out" / "file") as f:
            self.assertNotIn("outputs", f)

    def test_bad_calibration_files_name_the_key(self):
        self.assertFails("calib", [1], "holds a list")
        d = self.small()
        del d["xs"]
        self.assertFails("calib", d, "missing key 'xs'")
        d = self.small()
        d["extra"] = 1
        self.assertFails("calib", d, "unknown key(s) ['extra']")
        d = self.small()
        d["text_embs"] = d["text_embs"][0]
        self.assertFails("calib", d, "'text_embs'", "expected 4 dimensions")
        d = self.small()
        d["outputs"] = d["outputs"][:, :1]
        self.assertFails("calib", d, "'outputs'", "[1, 1, 4, 2, 2]")
        self.assertFails("calib", self.small(rows=3, prompts=2), "3 rows for 2 prompts")
        self.assertFails("calib", self.small(ts_rows=1), "'ts' has shape [1, 1]")
        d = self.small(rows=4, prompts=2, ts_rows=2)
        d["ts"][0, 1] = 500.0
        self.assertFails("calib", d, "'ts' differs within a step")
        d = self.small()
        d["added_cond_kwargs"] = {"text_embeds": d["added_cond_kwargs"]["text_embeds"]}
        self.assertFails("calib", d, "'added_cond_kwargs'", "text_embeds", "time_ids")
        d = self.small()
        d["xs"][0, 0, 0, 0, 0] = float("nan")
        self.assertFails("calib", d, "'xs' holds NaN")
        d = self.small()
        d["prompts"] = "one prompt"
        self.assertFails("calib", d, "'prompts' is not a list of strings")


if __name__ == "__main__":
    unittest.main(verbosity=2)
