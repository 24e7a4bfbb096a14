"""Stage 1: train the AutoencoderKL on full 128x128 synthetic images (foreground pixels weighted).

Resumable: rerun the same command and it continues from OUT/vae/checkpoint.pt.
At the end writes OUT/vae/final (save_pretrained) with scaling_factor = 1 / std of the latents.

--decoder-only: fine-tunes the decoder of OUT/vae/final with the encoder frozen (the latent space,
and so the UNet trained on it, stays valid), into OUT/vae_decoder/; run it beside the UNet.
"""
from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np
import torch
from diffusers import AutoencoderKL

import common_training as ct
import model_configs
import synthetic_shapes as shapes


def foreground_weights(images: torch.Tensor, weight: float) -> torch.Tensor:
    """1 on background pixels, `weight` on object pixels (background = the corner pixel's colour)."""
    corner = images[:, :, :1, :1]
    foreground = (images - corner).abs().amax(dim=1, keepdim=True) > 1e-3
    return 1.0 + (weight - 1.0) * foreground.float()


def pooled_rgb_loss(latents: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Latent channels 0-2 should be 2 x the image average-pooled to the latent grid.

    Makes the latent image-like: an object's colour is the latent value at its cells, so colour
    survives encoding (without it, 200 steps left small objects' colours mostly wrong: 38 % colour
    accuracy on reconstructions) and the UNet maps 'red ... on the left' to latent values in place.
    Channel 3 stays free for shape detail."""
    pooled = torch.nn.functional.avg_pool2d(images, images.shape[-1] // latents.shape[-1])
    return (latents[:, :3] - 2.0 * pooled).square().mean()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=pathlib.Path, required=True)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=8e-4)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--foreground-weight", type=float, default=5.0)
    p.add_argument("--kl-weight", type=float, default=1e-7)
    p.add_argument("--pooled-rgb-weight", type=float, default=1.0,
                   help="pull latent channels 0-2 towards the 8x8-average-pooled image (times 2)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--checkpoint-minutes", type=float, default=3.0)
    p.add_argument("--decoder-only", action="store_true")
    args = p.parse_args()
    ct.setup_threads()
    out = args.out / ("vae_decoder" if args.decoder_only else "vae")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    if args.decoder_only:
        vae = AutoencoderKL.from_pretrained(args.out / "vae" / "final")
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
        trainable = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    else:
        vae = AutoencoderKL(**model_configs.vae_config())
        trainable = list(vae.parameters())
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    start = 0
    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        vae.load_state_dict(state["model"]); optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"]); start = state["step"]
    log = ct.ProgressLog(out / "log.txt", args.steps, start)
    log.line(f"vae params {sum(p.numel() for p in vae.parameters())} start step {start} args {vars(args)}")
    last_save = time.time()
    vae.train()
    for step in range(start, args.steps):
        for group in optimizer.param_groups:
            group["lr"] = ct.warmup_cosine(step, args.steps, args.warmup, args.lr, 0.1)
        images = ct.images_to_tensor([shapes.render(o, b) for o, b in ct.scene_batch(args.seed, step, args.batch)])
        with torch.set_grad_enabled(not args.decoder_only):
            posterior = vae.encode(images).latent_dist
        # The posterior mean, not a sample: with unit initial variance a sampled latent drowns the
        # signal and the decoder learns the mean image first (a short budget cannot afford that).
        reconstruction = vae.decode(posterior.mode()).sample
        weights = foreground_weights(images, args.foreground_weight)
        error = reconstruction - images
        reconstruction_loss = (weights * (error.abs() + error.square())).mean()
        kl = posterior.kl().mean()
        loss = reconstruction_loss + args.kl_weight * kl
        if args.pooled_rgb_weight > 0 and not args.decoder_only:
            loss = loss + args.pooled_rgb_weight * pooled_rgb_loss(posterior.mode(), images)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        if step % 10 == 0 or step + 1 == args.steps:
            psnr = 10 * torch.log10(4.0 / error.detach().square().mean()).item()
            log.step(step, args.batch, loss=loss.item(), recon=reconstruction_loss.item(), kl=kl.item(), psnr=psnr)
        if time.time() - last_save > args.checkpoint_minutes * 60 or step + 1 == args.steps:
            ct.save_atomic({"model": vae.state_dict(), "optimizer": optimizer.state_dict(),
                            "torch_rng": torch.get_rng_state(), "step": step + 1}, checkpoint)
            last_save = time.time()
    finish(vae, args, out, log)


@torch.no_grad()
def finish(vae: AutoencoderKL, args, out: pathlib.Path, log: ct.ProgressLog) -> None:
    """Sets scaling_factor from the latent std of fresh images (kept when only the decoder
    trained), measures PSNR, saves."""
    vae.eval()
    scenes = ct.scene_batch(args.seed + 1000, 0, 256)
    images = ct.images_to_tensor([shapes.render(o, b) for o, b in scenes])
    latents = torch.cat([vae.encode(images[i:i + 32]).latent_dist.mean for i in range(0, 256, 32)])
    std = latents.std().item()
    if not args.decoder_only:
        vae.register_to_config(scaling_factor=1.0 / std)
    decoded = torch.cat([vae.decode(latents[i:i + 32]).sample for i in range(0, 256, 32)]).clamp(-1, 1)
    psnr = 10 * torch.log10(4.0 / (decoded - images).square().mean()).item()
    log.line(f"final: latent mean {latents.mean().item():.4f} std {std:.4f} scaling_factor {vae.config.scaling_factor:.4f} "
             f"held-out-batch PSNR {psnr:.2f} dB")
    final = out / "final"
    vae.save_pretrained(final)
    recon = ((decoded[:16].permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
    truth = ((images[:16].permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().astype(np.uint8)
    from PIL import Image
    rows = [np.concatenate(list(x), 1) for x in (truth[:8], recon[:8], truth[8:], recon[8:])]
    Image.fromarray(np.concatenate(rows, 0)).save(out / "reconstructions.png")


if __name__ == "__main__":
    main()
