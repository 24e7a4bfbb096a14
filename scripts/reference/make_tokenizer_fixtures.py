#!/usr/bin/env python3
"""Rebuild the OpenAI CLIP BPE files and write tokenizer goldens.

1. assets/clip-bpe/{vocab.json,merges.txt} are rebuilt offline from open_clip's
   `bpe_simple_vocab_16e6.txt.gz` (sdxl-architecture.md §4.2): ids 0-255 are the
   bytes_to_unicode chars, 256-511 the same + "</w>", 512-49405 the 48894 merges
   concatenated, 49406 <|startoftext|>, 49407 <|endoftext|>.
2. Two tokenizer folders are written like SDXL-Turbo's tokenizer/ and tokenizer_2/
   (tokenizer_2: pad_token "!" registered as a special added token, id 0).
3. Both are loaded with transformers' `CLIPTokenizer` (transformers 5: the
   tokenizers-backed "fast" class, `TokenizersBackend`) and every prompt below is
   encoded exactly as diffusers does:
       tok(prompt, padding="max_length", max_length=77, truncation=True).input_ids
   The ids go to Tests/Fixtures/tokenizer/goldens.json.

Pinned: torch 2.15.0, transformers 5.24.0, tokenizers 0.23.3, open_clip_torch 3.3.0.
Run: .venv-reference/bin/python scripts/reference/make_tokenizer_fixtures.py   (from the repo root)
"""
import gzip
import json
import os
import sys
import tempfile

import open_clip
import tokenizers
import transformers
from transformers import CLIPTokenizer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ASSETS = os.path.join(ROOT, "assets", "clip-bpe")
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures", "tokenizer")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def rebuild_assets():
    path = os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz")
    lines = gzip.open(path).read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    assert len(merges) == 48894
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == 49408, "duplicate tokens"
    os.makedirs(ASSETS, exist_ok=True)
    # Hub's CLIP vocab.json is one compact line, non-ASCII kept as UTF-8.
    with open(os.path.join(ASSETS, "vocab.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(vocab, ensure_ascii=False, separators=(",", ":")))
    with open(os.path.join(ASSETS, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return vocab


def added(content, normalized, special=True):
    d = {"content": content, "lstrip": False, "normalized": normalized, "rstrip": False, "single_word": False}
    if special is not None:
        d["special"] = special
    return d


def write_folder(folder, pad):
    """The SDXL-Turbo tokenizer folder layout (sdxl-architecture.md §1.6)."""
    os.makedirs(folder, exist_ok=True)
    for name in ("vocab.json", "merges.txt"):
        with open(os.path.join(ASSETS, name), "rb") as src, open(os.path.join(folder, name), "wb") as dst:
            dst.write(src.read())
    decoder = {}
    if pad == "!":
        decoder["0"] = added("!", False, True)
    decoder["49406"] = added("<|startoftext|>", True, True)
    decoder["49407"] = added("<|endoftext|>", True, True)
    config = {
        "add_prefix_space": False, "added_tokens_decoder": decoder, "bos_token": "<|startoftext|>",
        "clean_up_tokenization_spaces": True, "do_lower_case": True, "eos_token": "<|endoftext|>",
        "errors": "replace", "model_max_length": 77, "pad_token": pad, "tokenizer_class": "CLIPTokenizer",
        "unk_token": "<|endoftext|>",
    }
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        f.write(json.dumps(config, indent=2, sort_keys=True) + "\n")
    smap = {
        "bos_token": added("<|startoftext|>", True, None), "eos_token": added("<|endoftext|>", True, None),
        "pad_token": added(pad, pad != "!", None), "unk_token": added("<|endoftext|>", True, None),
    }
    with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
        f.write(json.dumps(smap, indent=2, sort_keys=True) + "\n")


WORDS = ("a majestic red fox standing in a snowy forest at dawn with soft golden light filtering through tall pine "
         "trees while tiny snowflakes drift slowly across the frame and a frozen river winds quietly in the "
         "distance beneath rugged mountains covered by thick clouds painted in the style of a detailed oil "
         "canvas by an old master artist who loved dramatic contrast rich textures and subtle warm colors that "
         "glow like embers under evening skies full of quiet birds singing softly while the last stars fade away "
         "and a lone traveler in a long wool coat walks along the icy path toward a small wooden cabin whose "
         "chimney releases a thin ribbon of smoke into the crisp morning air").split()
assert len(WORDS) >= 100
PROMPTS = [
    "a photo of a cat",
    "hello!! world",
    "wow!",
    "Héllo, wörld… naïve café ünïcode 東京タワー",
    "2024 has 365 days, 3.14159",
    "what?!... (really) [yes] {no} #tag @user $5 & 50% — done",
    "",
    " ".join(WORDS[:100]),
    "<|endoftext|> inside",
    "A   lot\tof \n whitespace",
    "it's we're they've I'm you'll he'd",
    # extra edge cases
    "IT'S <|STARTOFTEXT|> Shouting!",
    "emoji 🐱🚀 and ñ e\u0301 decomposed",
    "北京 and 中文字符 mixed",
    "tabs\u00a0nbsp\u3000ideographic space",
    "''s 'hello' \"quoted\" don't",
]


def main():
    vocab = rebuild_assets()
    out = {
        "producer": f"transformers {transformers.__version__} CLIPTokenizer "
                    f"(tokenizers {tokenizers.__version__} fast backend), files rebuilt from open_clip "
                    f"{open_clip.__version__} bpe_simple_vocab_16e6.txt.gz",
        "expression": 'tok(prompt, padding="max_length", max_length=77, truncation=True).input_ids',
        "cases": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        toks = {}
        for name, pad in (("tokenizer", "<|endoftext|>"), ("tokenizer_2", "!")):
            write_folder(os.path.join(tmp, name), pad)
            toks[name] = CLIPTokenizer.from_pretrained(os.path.join(tmp, name))
            print(name, type(toks[name]).__mro__[1].__name__, "pad", toks[name].pad_token_id, file=sys.stderr)
        assert toks["tokenizer"].pad_token_id == 49407 and toks["tokenizer_2"].pad_token_id == 0
        for p in PROMPTS:
            case = {"prompt": p}
            for name, tok in toks.items():
                case[name] = tok(p, padding="max_length", max_length=77, truncation=True).input_ids
                assert len(case[name]) == 77
            out["cases"].append(case)
    assert out["cases"][0]["tokenizer"][:7] == [49406, 320, 1125, 539, 320, 2368, 49407]
    os.makedirs(FIXTURES, exist_ok=True)
    with open(os.path.join(FIXTURES, "goldens.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    print("vocab", len(vocab), "cases", len(out["cases"]), file=sys.stderr)


if __name__ == "__main__":
    main()
