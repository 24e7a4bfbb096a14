"""Stage 2: UNet + both CLIP text encoders trained jointly through the v-prediction diffusion loss.

Latents of the training images come from the stage-1 VAE (a pool grown while training, see
LatentPool); the model trains on them with conditioning exactly as StableDiffusionXLPipeline builds it:
penultimate hidden states of both encoders concatenated (80-d), pooled = text_embeds of encoder 2
(40-d), time_ids (128, 128, 0, 0, 128, 128). Resumable from OUT/unet/checkpoint.pt; every
--eval-minutes the EMA model renders the held-out captions at 1 step and the quick checker scores it.
"""
from __future__ import annotations

import argparse
import copy
import json
import pathlib
import time

import numpy as np
import torch
from diffusers import (AutoencoderKL, DDPMScheduler, EulerAncestralDiscreteScheduler,
                       StableDiffusionXLPipeline, UNet2DConditionModel)
from diffusers.training_utils import EMAModel
from transformers import CLIPTextModel, CLIPTextModelWithProjection

import common_training as ct
import model_configs
import quick_checker
import synthetic_shapes as shapes

FEW_STEP_TIMESTEPS = (749, 499, 249)   # trailing 4-step timesteps after 999


class LatentPool:
    """Training latents (VAE posterior mean * scaling_factor) and their token ids, grown while
    training: `initial` images first, then `per_step` fresh images every step. Encoding overlaps
    training instead of delaying it, and every image is seeded by its batch index (resumable)."""

    INITIAL_INDEX = 1_000_000   # batch indices of the initial images, apart from the per-step ones

    def __init__(self, vae, tokenizers, seed: int):
        self.vae, self.tokenizers, self.seed = vae, tokenizers, seed
        self.latents, self.masks, self.ids1, self.ids2, self.captions = [], [], [], [], []
        self._cat = None

    @torch.no_grad()
    def add(self, batch_index: int, count: int) -> None:
        scenes = ct.scene_batch(self.seed, batch_index, count)
        rendered = [shapes.render(o, b) for o, b in scenes]
        images = ct.images_to_tensor(rendered)
        captions = [shapes.caption(o, b) for o, b in scenes]
        self.latents.append(self.vae.encode(images).latent_dist.mean * self.vae.config.scaling_factor)
        self.masks.append(object_cells(rendered, [b for _, b in scenes]))
        self.ids1.append(tokenize(self.tokenizers[0], captions))
        self.ids2.append(tokenize(self.tokenizers[1], captions))
        self.captions += captions
        self._cat = None

    def fill_initial(self, count: int, chunk: int = 64) -> None:
        for k in range((count + chunk - 1) // chunk):
            self.add(self.INITIAL_INDEX + k, chunk)

    def tensors(self):
        if self._cat is None:
            self._cat = tuple(torch.cat(x) for x in (self.latents, self.masks, self.ids1, self.ids2))
            self.latents, self.masks, self.ids1, self.ids2 = ([x] for x in self._cat)
        return self._cat

    def __len__(self) -> int:
        return len(self.captions)

    def state_dict(self) -> dict:
        latents, masks, ids1, ids2 = self.tensors()
        return {"latents": latents, "masks": masks, "ids1": ids1, "ids2": ids2, "captions": self.captions}

    def load_state_dict(self, state: dict) -> None:
        if "masks" not in state:
            raise SystemExit("the checkpoint's latent pool has no object masks (written before --object-weight): "
                             "start a new run folder")
        self.latents, self.masks = [state["latents"]], [state["masks"]]
        self.ids1, self.ids2 = [state["ids1"]], [state["ids2"]]
        self.captions, self._cat = list(state["captions"]), None


def object_cells(images, backgrounds) -> torch.Tensor:
    """(N, 1, 16, 16): 1 where a latent cell (8x8 pixels) holds any pixel of an object, else 0."""
    masks = [np.any(image != np.array(shapes.BACKGROUNDS[b], dtype=np.uint8), axis=-1) for image, b in zip(images, backgrounds)]
    pixels = torch.from_numpy(np.stack(masks).astype(np.float32)).unsqueeze(1)
    factor = model_configs.IMAGE_SIZE // model_configs.LATENT_SIZE
    return (torch.nn.functional.max_pool2d(pixels, factor) > 0).float()


def tokenize(tokenizer, captions) -> torch.Tensor:
    return tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length,
                     truncation=True, return_tensors="pt").input_ids


def condition(text_encoder, text_encoder_2, ids1, ids2):
    """(prompt_embeds, pooled) as StableDiffusionXLPipeline.encode_prompt builds them (clip_skip None)."""
    out1 = text_encoder(ids1, output_hidden_states=True)
    out2 = text_encoder_2(ids2, output_hidden_states=True)
    return torch.cat([out1.hidden_states[-2], out2.hidden_states[-2]], dim=-1), out2.text_embeds


def sample_timesteps(generator: torch.Generator, batch: int, p_final: float, p_few: float) -> torch.Tensor:
    """Timestep mix: t = 999 (the 1-step sample) with p_final, the other trailing 4-step timesteps
    with p_few, uniform over 0..999 otherwise."""
    u = torch.rand(batch, generator=generator)
    uniform = torch.randint(0, 1000, (batch,), generator=generator)
    few = torch.tensor(FEW_STEP_TIMESTEPS)[torch.randint(0, 3, (batch,), generator=generator)]
    return torch.where(u < p_final, torch.full_like(uniform, 999), torch.where(u < p_final + p_few, few, uniform))


def build_pipeline(vae, text_encoder, text_encoder_2, unet) -> StableDiffusionXLPipeline:
    tokenizer, tokenizer_2 = model_configs.tokenizers()
    scheduler = EulerAncestralDiscreteScheduler(**model_configs.scheduler_config())
    return StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                     tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler)


@torch.no_grad()
def evaluate(pipeline: StableDiffusionXLPipeline, seeds=(0, 1), steps: int = 1, save: pathlib.Path | None = None) -> dict:
    """Quick-checker accuracy on the 50 held-out captions at `steps` steps, over `seeds`."""
    scenes = shapes.heldout_scenes()
    captions = [shapes.caption(o, b) for o, b in scenes]
    images = []
    for seed in seeds:
        generators = [torch.Generator().manual_seed(seed * 1000 + i) for i in range(len(captions))]
        out = pipeline(prompt=captions, num_inference_steps=steps, guidance_scale=0.0, height=128, width=128,
                       generator=generators, output_type="np").images
        images += list((out * 255).round().clip(0, 255).astype(np.uint8))
    if save is not None:
        from PIL import Image
        grid = np.concatenate([np.concatenate(images[r * 10:r * 10 + 10], 1) for r in range(5)], 0)
        Image.fromarray(grid).save(save)
    return quick_checker.accuracy(images, scenes * len(seeds))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=pathlib.Path, required=True)
    p.add_argument("--initial-images", type=int, default=512)
    p.add_argument("--images-per-step", type=int, default=8)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=8e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--ema", type=float, default=0.998)
    p.add_argument("--object-weight", type=float, default=4.0, help="extra v-loss weight of latent cells holding an object")
    p.add_argument("--p-final", type=float, default=0.5)
    p.add_argument("--p-few", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--checkpoint-minutes", type=float, default=4.0)
    p.add_argument("--eval-minutes", type=float, default=15.0)
    args = p.parse_args()
    ct.setup_threads()
    out = args.out / "unet"
    out.mkdir(parents=True, exist_ok=True)
    vae = AutoencoderKL.from_pretrained(args.out / "vae" / "final").eval().requires_grad_(False)
    pool = LatentPool(vae, model_configs.tokenizers(), args.seed + 100)

    torch.manual_seed(args.seed)
    unet = UNet2DConditionModel(**model_configs.unet_config())
    text_encoder = CLIPTextModel(model_configs.text_encoder_config(second=False))
    text_encoder_2 = CLIPTextModelWithProjection(model_configs.text_encoder_config(second=True))
    models = [unet, text_encoder, text_encoder_2]
    parameters = [q for m in models for q in m.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=args.lr, weight_decay=0.01)
    ema = EMAModel(parameters, decay=args.ema)
    noise_schedule = DDPMScheduler(**{k: v for k, v in model_configs.scheduler_config().items()
                                      if k not in ("timestep_spacing", "steps_offset")})
    alphas = noise_schedule.alphas_cumprod
    time_ids = torch.tensor([model_configs.TIME_IDS], dtype=torch.float32)
    start, history = 0, []
    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        for m, s in zip(models, state["models"]):
            m.load_state_dict(s)
        optimizer.load_state_dict(state["optimizer"]); ema.load_state_dict(state["ema"])
        pool.load_state_dict(state["pool"])
        start, history = state["step"], state["history"]
    else:
        pool.fill_initial(args.initial_images)
    log = ct.ProgressLog(out / "log.txt", args.steps, start)
    log.line(f"unet params {sum(q.numel() for q in unet.parameters())} text encoders "
             f"{sum(q.numel() for q in text_encoder.parameters())} + {sum(q.numel() for q in text_encoder_2.parameters())}; "
             f"pool {len(pool)} images; start step {start}; args {vars(args)}")
    last_save = last_eval = time.time()
    running = []
    for step in range(start, args.steps):
        for m in models:
            m.train()
        lr = ct.warmup_cosine(step, args.steps, args.warmup, args.lr, 0.1)
        for group in optimizer.param_groups:
            group["lr"] = lr
        pool.add(step, args.images_per_step)
        latents, masks, ids1, ids2 = pool.tensors()
        generator = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        index = torch.randint(0, len(pool), (args.batch,), generator=generator)
        x0 = latents[index]
        noise = torch.randn(x0.shape, generator=generator)
        t = sample_timesteps(generator, args.batch, args.p_final, args.p_few)
        a = alphas[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
        target = a.sqrt() * noise - (1 - a).sqrt() * x0          # v
        prompt_embeds, pooled = condition(text_encoder, text_encoder_2, ids1[index], ids2[index])
        prediction = unet(noisy, t, encoder_hidden_states=prompt_embeds,
                          added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids.expand(args.batch, -1)}).sample
        # The objects are a few latent cells of the image: weighting them keeps the caption's
        # signal from drowning in the background, which the model learns first.
        weight = 1 + args.object_weight * masks[index]
        loss = ((prediction - target).square() * weight).mean() / weight.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 2.0)
        optimizer.step()
        ema.step(parameters)
        final_mask = t == 999
        running.append((loss.item(), (prediction - target)[final_mask].square().mean().item() if final_mask.any() else float("nan")))
        if step % 25 == 24 or step + 1 == args.steps:
            mean_loss = float(np.mean([r[0] for r in running]))
            mean_999 = float(np.nanmean([r[1] for r in running]))
            history.append({"step": step + 1, "loss": mean_loss, "loss_t999": mean_999, "lr": lr})
            running = []
            log.step(step, args.batch, loss=mean_loss, loss_t999=mean_999, lr=lr, pool=len(pool))
        is_last = step + 1 == args.steps
        if time.time() - last_eval > args.eval_minutes * 60 or is_last:
            history.append({"step": step + 1, "eval_ema_1step": eval_ema(ema, parameters, vae, models, out, step + 1, log)})
            last_eval = time.time()
        if time.time() - last_save > args.checkpoint_minutes * 60 or is_last:
            ct.save_atomic({"models": [m.state_dict() for m in models], "optimizer": optimizer.state_dict(),
                            "ema": ema.state_dict(), "pool": pool.state_dict(), "step": step + 1, "history": history}, checkpoint)
            save_ema_weights(ema, parameters, models, out / "ema_latest.pt", step + 1)
            (out / "history.json").write_text(json.dumps(history, indent=1))
            last_save = time.time()


def with_ema(ema: EMAModel, parameters, action):
    ema.store(parameters)
    ema.copy_to(parameters)
    try:
        return action()
    finally:
        ema.restore(parameters)


def save_ema_weights(ema, parameters, models, path: pathlib.Path, step: int) -> None:
    """The EMA weights alone (what export.py ships), rewritten with every checkpoint."""
    with_ema(ema, parameters, lambda: ct.save_atomic(
        {"step": step, "unet": models[0].state_dict(), "text_encoder": models[1].state_dict(),
         "text_encoder_2": models[2].state_dict()}, path))


def latest_decoder(run: pathlib.Path, vae: AutoencoderKL) -> AutoencoderKL:
    """The VAE with the decoder fine-tune's latest checkpoint when that stage runs beside us."""
    checkpoint = run / "vae_decoder" / "checkpoint.pt"
    if not checkpoint.exists():
        return vae
    tuned = copy.deepcopy(vae)
    tuned.load_state_dict(torch.load(checkpoint, weights_only=False)["model"])
    return tuned.eval()


def eval_ema(ema, parameters, vae, models, out: pathlib.Path, step: int, log: ct.ProgressLog) -> dict:
    def run():
        for m in models:
            m.eval()
        pipeline = build_pipeline(latest_decoder(out.parent, vae), models[1], models[2], models[0])
        return evaluate(pipeline, save=out / f"eval_step{step:05d}.png")
    started = time.time()
    result = with_ema(ema, parameters, run)
    log.line(f"eval EMA 1-step step {step}: " + " ".join(f"{k} {v:.3f}" for k, v in result.items())
             + f" ({time.time() - started:.0f} s)")
    return result


if __name__ == "__main__":
    main()
