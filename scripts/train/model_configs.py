"""Component configs of the trained tiny SDXL-architecture pipeline (trained-model.md's table).

One change from the table: fewer GroupNorm groups (VAE 4 instead of 16, UNet 8 instead of 32).
With one channel per group a GroupNorm is an instance norm: it removes every channel's spatial
mean, so a uniform offset (the background colour; in the UNet's resnets, the time/text embedding
added before norm2) cannot pass. With 16 groups the VAE stayed at ~9 dB PSNR for 110 steps (it
output the mean image); with 4 groups it reached 21.7 dB by step 71 on the same batches.
"""
from __future__ import annotations

import pathlib

REPO = pathlib.Path(__file__).resolve().parents[2]
CLIP_BPE = REPO / "assets" / "clip-bpe"
IMAGE_SIZE = 128
LATENT_SIZE = 16
TIME_IDS = (128, 128, 0, 0, 128, 128)   # original size, crop top-left, target size (pipeline default)


def vae_config() -> dict:
    return dict(in_channels=3, out_channels=3, latent_channels=4,
                down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                block_out_channels=[16, 32, 64, 64], layers_per_block=1, norm_num_groups=4,
                act_fn="silu", sample_size=IMAGE_SIZE, scaling_factor=1.0, force_upcast=False)


def unet_config() -> dict:
    return dict(sample_size=LATENT_SIZE, in_channels=4, out_channels=4,
                down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
                block_out_channels=[32, 64, 96], layers_per_block=2,
                transformer_layers_per_block=[1, 1, 2], attention_head_dim=[2, 4, 6],  # head size 16
                norm_num_groups=8, cross_attention_dim=80, use_linear_projection=True,
                addition_embed_type="text_time", addition_time_embed_dim=8,
                projection_class_embeddings_input_dim=88)  # 6 time ids * 8 + pooled 40


def text_encoder_config(second: bool):
    from transformers import CLIPTextConfig
    hidden = 48 if second else 32
    return CLIPTextConfig(vocab_size=49408, hidden_size=hidden, intermediate_size=2 * hidden,
                          num_hidden_layers=3, num_attention_heads=4, max_position_embeddings=77,
                          hidden_act="gelu" if second else "quick_gelu", projection_dim=40 if second else 32,
                          # SDXL's own configs say bos 0 / eos 2 / pad 1: transformers then pools at the argmax
                          # token id, which is the end-of-text token 49407 (what our engine does).
                          bos_token_id=0, eos_token_id=2, pad_token_id=1)


def scheduler_config() -> dict:
    return dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                prediction_type="v_prediction", timestep_spacing="trailing", steps_offset=1)


def tokenizers():
    from transformers import CLIPTokenizer
    vocab, merges = str(CLIP_BPE / "vocab.json"), str(CLIP_BPE / "merges.txt")
    return (CLIPTokenizer(vocab, merges, pad_token="<|endoftext|>", model_max_length=77),
            CLIPTokenizer(vocab, merges, pad_token="!", model_max_length=77))
