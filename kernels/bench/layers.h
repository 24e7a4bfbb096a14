// Every quantized layer geometry of the SDXL-Turbo UNet at 512×512 (64×64 latents), deduplicated by
// shape, with how many of the 794 sites have it (743 Linears, 51 Conv2d; counts below add up to
// these). Derived from the architecture (configs/models/sdxl-turbo-unet.json, mixdq-method.md
// appendix A): transformer blocks 10 at 640 channels (1024 tokens), 60 at 1280 (256 tokens), text
// context 77×2048; split shortcuts split at the channels of h, the skip following.
// Shared by tests/ (a sampled bit-exactness check per geometry) and bench/.
#pragma once
#include <stdint.h>

struct SdxlLayer {
    const char *example;  // one diffusers path with this geometry
    int count;            // sites with this geometry
    int conv;             // 0: Linear, 1: Conv2d
    int64_t rows;         // Linear: rows per sample (tokens); Conv2d: unused
    int64_t height;       // Conv2d input height = width (per sample)
    int64_t in, out;      // features / channels
    int ksize, stride, pad;
    int64_t split;        // split shortcut: channels of the first part (0: none)
};

static const SdxlLayer kSdxlLayers[] = {
    // Linears
    {"time_embedding.linear_1", 1, 0, 1, 0, 320, 1280, 1, 1, 0, 0},
    {"time_embedding.linear_2 (+ add_embedding.linear_2, 7 time_emb_proj)", 9, 0, 1, 0, 1280, 1280, 1, 1, 0, 0},
    {"add_embedding.linear_1", 1, 0, 1, 0, 2816, 1280, 1, 1, 0, 0},
    {"down_blocks.0.resnets.0.time_emb_proj", 5, 0, 1, 0, 1280, 320, 1, 1, 0, 0},
    {"down_blocks.1.resnets.0.time_emb_proj", 5, 0, 1, 0, 1280, 640, 1, 1, 0, 0},
    {"down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q", 70, 0, 1024, 0, 640, 640, 1, 1, 0, 0},
    {"down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k", 20, 0, 77, 0, 2048, 640, 1, 1, 0, 0},
    {"down_blocks.1.attentions.0.transformer_blocks.0.ff.net.0.proj", 10, 0, 1024, 0, 640, 5120, 1, 1, 0, 0},
    {"down_blocks.1.attentions.0.transformer_blocks.0.ff.net.2", 10, 0, 1024, 0, 2560, 640, 1, 1, 0, 0},
    {"down_blocks.2.attentions.0.transformer_blocks.0.attn1.to_q", 372, 0, 256, 0, 1280, 1280, 1, 1, 0, 0},
    {"down_blocks.2.attentions.0.transformer_blocks.0.attn2.to_k", 120, 0, 77, 0, 2048, 1280, 1, 1, 0, 0},
    {"down_blocks.2.attentions.0.transformer_blocks.0.ff.net.0.proj", 60, 0, 256, 0, 1280, 10240, 1, 1, 0, 0},
    {"down_blocks.2.attentions.0.transformer_blocks.0.ff.net.2", 60, 0, 256, 0, 5120, 1280, 1, 1, 0, 0},
    // Convolutions (NHWC)
    {"conv_in", 1, 1, 0, 64, 4, 320, 3, 1, 1, 0},
    {"down_blocks.0.resnets.0.conv1", 7, 1, 0, 64, 320, 320, 3, 1, 1, 0},
    {"down_blocks.0.downsamplers.0.conv", 1, 1, 0, 64, 320, 320, 3, 2, 1, 0},
    {"down_blocks.1.resnets.0.conv1", 1, 1, 0, 32, 320, 640, 3, 1, 1, 0},
    {"down_blocks.1.resnets.0.conv2", 6, 1, 0, 32, 640, 640, 3, 1, 1, 0},
    {"down_blocks.1.resnets.0.conv_shortcut", 1, 1, 0, 32, 320, 640, 1, 1, 0, 0},
    {"down_blocks.1.downsamplers.0.conv", 1, 1, 0, 32, 640, 640, 3, 2, 1, 0},
    {"down_blocks.2.resnets.0.conv1", 1, 1, 0, 16, 640, 1280, 3, 1, 1, 0},
    {"down_blocks.2.resnets.0.conv2", 10, 1, 0, 16, 1280, 1280, 3, 1, 1, 0},
    {"down_blocks.2.resnets.0.conv_shortcut", 1, 1, 0, 16, 640, 1280, 1, 1, 0, 0},
    {"up_blocks.0.resnets.0.conv1", 2, 1, 0, 16, 2560, 1280, 3, 1, 1, 0},
    {"up_blocks.0.resnets.2.conv1", 1, 1, 0, 16, 1920, 1280, 3, 1, 1, 0},
    {"up_blocks.0.resnets.0.conv_shortcut", 2, 1, 0, 16, 2560, 1280, 1, 1, 0, 1280},
    {"up_blocks.0.resnets.2.conv_shortcut", 1, 1, 0, 16, 1920, 1280, 1, 1, 0, 1280},
    {"up_blocks.0.upsamplers.0.conv", 1, 1, 0, 32, 1280, 1280, 3, 1, 1, 0},
    {"up_blocks.1.resnets.0.conv1", 1, 1, 0, 32, 1920, 640, 3, 1, 1, 0},
    {"up_blocks.1.resnets.1.conv1", 1, 1, 0, 32, 1280, 640, 3, 1, 1, 0},
    {"up_blocks.1.resnets.2.conv1", 1, 1, 0, 32, 960, 640, 3, 1, 1, 0},
    {"up_blocks.1.resnets.0.conv_shortcut", 1, 1, 0, 32, 1920, 640, 1, 1, 0, 1280},
    {"up_blocks.1.resnets.1.conv_shortcut", 1, 1, 0, 32, 1280, 640, 1, 1, 0, 640},
    {"up_blocks.1.resnets.2.conv_shortcut", 1, 1, 0, 32, 960, 640, 1, 1, 0, 640},
    {"up_blocks.1.upsamplers.0.conv", 1, 1, 0, 64, 640, 640, 3, 1, 1, 0},
    {"up_blocks.2.resnets.0.conv1", 1, 1, 0, 64, 960, 320, 3, 1, 1, 0},
    {"up_blocks.2.resnets.1.conv1", 2, 1, 0, 64, 640, 320, 3, 1, 1, 0},
    {"up_blocks.2.resnets.0.conv_shortcut", 1, 1, 0, 64, 960, 320, 1, 1, 0, 640},
    {"up_blocks.2.resnets.1.conv_shortcut", 2, 1, 0, 64, 640, 320, 1, 1, 0, 320},
    {"conv_out", 1, 1, 0, 64, 320, 4, 3, 1, 1, 0},
};
static const int kSdxlLayerCount = sizeof(kSdxlLayers) / sizeof(kSdxlLayers[0]);
