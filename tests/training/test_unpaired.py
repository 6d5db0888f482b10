"""Unpaired GAN training: UEGAN and CycleGAN recipes run end to end, the quality term reaches the generator,
and a resumed run continues with the same epoch, schedule, optimiser and image-pool state."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from safetensors.torch import save_file

from enhancekit import create_model
from enhancekit.data.datasets import UnpairedImageDataset
from enhancekit.errors import EnhanceKitError
from enhancekit.losses.ssim import StructureLoss
from enhancekit.training.config import load_config
from enhancekit.training.runner import ModelDeviceEMA, build_dataloaders, build_task, train
from enhancekit.training.unpaired import ImagePool

LOWLIGHT = Path(__file__).parents[1] / "data" / "lowlight"


def _recipe(tmp_path: Path, kind: str = "uegan", **extra) -> Path:
    models = {
        "uegan": ("uegan", {"base_width": 8, "depth": 2, "global_blocks": 1}),
        "cyclegan": ("cyclegan", {"width": 8, "blocks": 2}),
    }
    discriminators = {
        "uegan": ("uegan-discriminator", {"base_width": 8, "stages": 4, "scales": 2}),
        "cyclegan": ("cyclegan-discriminator", {"width": 8}),
    }
    name, args = models[kind]
    d_name, d_args = discriminators[kind]
    recipe = {
        "name": "gan",
        "output_dir": str(tmp_path / "run"),
        "model": {"name": name, "args": args},
        "data": {
            "train": {
                "low": str(LOWLIGHT / "low"),
                "high": str(LOWLIGHT / "high"),
                "patch_size": 64,
                "repeat": 4,
            },
            "val": {"input": str(LOWLIGHT / "low"), "target": str(LOWLIGHT / "high"), "resize": [96, 128]},
            "batch_size": 2,
        },
        "unpaired": {
            "kind": kind,
            "discriminator": {"name": d_name, "args": d_args},
            "loss": "relativistic_hinge" if kind == "uegan" else "lsgan",
            "pool_size": 3,
        },
        "optimizer": {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.999]},
        "scheduler": {"name": "linear_decay", "start_epoch": 1},
        "trainer": {
            "max_epochs": 2,
            "accelerator": "cpu",
            "devices": 1,
            "enable_model_summary": False,
            "enable_progress_bar": False,
            "log_every_n_steps": 1,
        },
        **extra,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.parametrize("kind", ["uegan", "cyclegan"])
def test_unpaired_recipe_trains_and_exports(tmp_path, kind):
    out = train(load_config(_recipe(tmp_path, kind)))
    rows = list(csv.DictReader((out / "logs" / "metrics.csv").open()))
    logged = {key for row in rows for key, value in row.items() if value}
    terms = {"uegan": {"train/quality", "train/consistency", "train/identity"}, "cyclegan": {"train/cycle"}}
    assert {"train/d_loss", "val/psnr"} | terms[kind] <= logged
    create_model(kind, weights=out / "model.safetensors")


def test_cyclegan_takes_its_own_defaults(tmp_path):
    recipe = yaml.safe_load(_recipe(tmp_path, kind="cyclegan").read_text())
    del recipe["unpaired"]["loss"]
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump(recipe))
    spec = load_config(tmp_path / "bare.yaml").unpaired
    assert (spec.loss, spec.identity_weight, spec.optimizer.lr) == ("lsgan", 0.5, 2e-4)
    assert spec.optimizer.betas == [0.5, 0.999]
    build_task(load_config(tmp_path / "bare.yaml"))
    uegan = load_config(_recipe(tmp_path, kind="uegan")).unpaired
    assert (uegan.loss, uegan.identity_weight) == ("relativistic_hinge", 0.1)


def test_cyclegan_with_a_relativistic_loss_is_a_recipe_error(tmp_path):
    config = load_config(_recipe(tmp_path, kind="cyclegan"), ["unpaired.loss=relativistic_hinge"])
    with pytest.raises(EnhanceKitError, match="relativistic_hinge does not suit CycleGAN"):
        build_task(config)


def test_quality_term_alone_moves_the_generator(tmp_path):
    recipe = _recipe(tmp_path)
    config = load_config(recipe, ["unpaired.consistency_weight=0", "unpaired.identity_weight=0"])
    task, _ = build_task(config)
    low, high = next(iter(build_dataloaders(config, task.model)[0]))
    enhanced = task.model(low)
    real = task.discriminator(high)
    quality = task.adversarial_loss.generator(task.discriminator(enhanced), [r.detach() for r in real])
    quality.backward()
    grads = [p.grad for p in task.model.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


def test_uegan_generator_sees_low_and_high_in_one_batch(tmp_path):
    """With batch norm, G(high) must depend on what the low half of the batch looks like: separate low-only
    and high-only batches would be normalised away from each other and the identity term could not be met."""
    task, _ = build_task(load_config(_recipe(tmp_path)))
    rng = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in task.model.parameters():  # the correction head starts at zero (G = identity): perturb it
            p.add_(0.05 * torch.randn(p.shape, generator=rng))
    task.model.train()
    high = torch.rand(2, 3, 32, 32, generator=rng)
    enhanced, through_dim = task.generate_both(0.3 * high, high)
    _, through_same = task.generate_both(high, high)
    assert enhanced.shape == through_dim.shape == high.shape
    assert (through_dim - through_same).abs().max() > 1e-3


class _StopAfter(L.Callback):
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, task):
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


class _Capture(L.Callback):
    def on_train_start(self, trainer, task):
        self.epoch = trainer.current_epoch
        self.lrs = [o.param_groups[0]["lr"] for o in trainer.optimizers]
        self.exp_avg = [next(iter(o.state.values()))["exp_avg"].clone() for o in trainer.optimizers]
        self.pool = [img.clone() for img in task.pools["fake_high"].images]
        self.pool_rng = task.pools["fake_high"].generator.get_state().clone()


def test_resume_restores_epoch_schedule_optimizer_and_pool(tmp_path):
    recipe = _recipe(tmp_path, **{"trainer": None})
    config = load_config(recipe, ["trainer.max_epochs=4", "trainer.accelerator=cpu", "trainer.logger=false"])
    task, _ = build_task(config)
    train_loader, val_loader = build_dataloaders(config, task.model)
    # The interrupted run is a 4-epoch run stopped after its second epoch, so its schedule spans 4 epochs.
    first = L.Trainer(
        max_epochs=4,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[_StopAfter(2)],
    )
    first.fit(task, train_loader, val_loader)
    assert first.current_epoch == 2
    checkpoint_path = tmp_path / "mid.ckpt"
    first.save_checkpoint(checkpoint_path)
    saved = torch.load(checkpoint_path, weights_only=False)
    assert len(saved["image_pools"]["fake_high"]["images"]) == 3  # the pool filled up

    fresh, _ = build_task(config)
    capture = _Capture()
    second = L.Trainer(
        max_epochs=4,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[capture],
        default_root_dir=tmp_path,
    )
    second.fit(fresh, train_loader, val_loader, ckpt_path=str(checkpoint_path))
    assert capture.epoch == 2
    # linear_decay from epoch 1 to 0 at epoch 4: after two epochs the rate is 2/3 of the initial one.
    assert capture.lrs == pytest.approx([1e-3 * 2 / 3, 4e-4 * 2 / 3])
    for restored, stored in zip(capture.exp_avg, saved["optimizer_states"], strict=True):
        torch.testing.assert_close(restored, next(iter(stored["state"].values()))["exp_avg"])
    for restored, stored in zip(capture.pool, saved["image_pools"]["fake_high"]["images"], strict=True):
        torch.testing.assert_close(restored, stored)
    assert torch.equal(capture.pool_rng, saved["image_pools"]["fake_high"]["rng"])


class _CaptureWeights(L.Callback):
    def __init__(self, ema: ModelDeviceEMA) -> None:
        self.ema = ema

    def on_train_start(self, trainer, task):
        self.raw = {k: v.clone() for k, v in task.model.state_dict().items()}
        self.average = {k: v.clone() for k, v in self.ema._average_model.module.model.state_dict().items()}


def test_resume_with_ema_restores_raw_and_averaged_weights(tmp_path):
    config = load_config(_recipe(tmp_path, **{"trainer": None}), ["trainer.max_epochs=3"])
    options = {"max_epochs": 3, "accelerator": "cpu", "logger": False, "enable_progress_bar": False}
    task, _ = build_task(config)
    loaders = build_dataloaders(config, task.model)
    # The mid-run checkpoint written during training (after fit ends, the average replaces the raw weights).
    saver = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True)
    callbacks = [_StopAfter(2), ModelDeviceEMA(decay=0.5), saver]
    L.Trainer(**options, callbacks=callbacks, default_root_dir=tmp_path).fit(task, *loaders)
    checkpoint_path = tmp_path / "checkpoints" / "last.ckpt"
    saved = torch.load(checkpoint_path, weights_only=False)

    fresh, _ = build_task(config)
    ema = ModelDeviceEMA(decay=0.5)
    capture = _CaptureWeights(ema)
    second = L.Trainer(**options, callbacks=[ema, capture], default_root_dir=tmp_path)
    second.fit(fresh, *loaders, ckpt_path=str(checkpoint_path))
    differs = False
    for key, value in capture.raw.items():
        torch.testing.assert_close(value, saved["current_model_state"][f"model.{key}"])
        torch.testing.assert_close(capture.average[key], saved["state_dict"][f"model.{key}"])
        differs |= not torch.equal(value, capture.average[key])
    assert differs  # the average is not the raw generator


def test_ema_copy_follows_the_model_to_its_device(tmp_path):
    # Lightning makes the copy before the strategy moves the model (to a GPU in real runs; "meta" here).
    task, _ = build_task(load_config(_recipe(tmp_path)))
    ema = ModelDeviceEMA(decay=0.5)
    ema.setup(None, task, "fit")
    task.to("meta")
    ema.on_fit_start(None, task)
    assert {p.device.type for p in ema._average_model.parameters()} == {"meta"}


def test_cyclegan_initial_weights_go_to_the_forward_generator_only(tmp_path):
    forward = create_model("cyclegan", pretrained=False, width=8, blocks=2)
    weights = tmp_path / "forward.safetensors"
    save_file(forward.state_dict(), str(weights))
    config = load_config(_recipe(tmp_path, kind="cyclegan"), [f"model.weights={weights}"])
    task, _ = build_task(config)
    for name, value in forward.state_dict().items():
        torch.testing.assert_close(task.model.state_dict()[name], value)
    inverse = task.inverse.state_dict()
    assert any(not torch.equal(inverse[name], value) for name, value in forward.state_dict().items())


def test_image_pool_mixes_history_and_replays_after_restore():
    pool = ImagePool(size=4, seed=1)
    batches = [torch.full((2, 1, 2, 2), float(i)) for i in range(6)]
    for batch in batches[:2]:
        torch.testing.assert_close(pool.query(batch), batch)  # filling: returned unchanged
    state = pool.state_dict()
    first = [pool.query(b) for b in batches[2:]]
    seen = {float(v) for out in first for v in out[:, 0, 0, 0]}
    assert seen & {0.0, 1.0}  # some stored (older) images came back
    restored = ImagePool(size=4)
    restored.load_state_dict(state)
    for out, batch in zip(first, batches[2:], strict=True):
        torch.testing.assert_close(restored.query(batch), out)


def test_unpaired_samples_draw_the_two_sets_independently():
    lows = [np.full((8, 8, 1), i / 10, np.float32) for i in range(3)]
    highs = [np.full((8, 8, 1), 0.5 + i / 10, np.float32) for i in range(3)]
    # 300 draws: the chance that one of the 9 combinations never shows up is about 1e-14.
    dataset = UnpairedImageDataset(lows, highs, patch_size=8, repeat=100)
    samples = (dataset[i] for i in range(len(dataset)))
    combos = {(round(float(lo.mean()), 2), round(float(hi.mean()), 2)) for lo, hi in samples}
    assert len(combos) == 9  # every low image meets every high image


def test_structure_loss_ignores_brightness_but_not_blur():
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.random((1, 3, 64, 64), dtype=np.float32) * 0.5)
    loss = StructureLoss()
    # Brighter with a colour cast: a different offset per channel, no clipping.
    brighter = image + torch.tensor([0.3, 0.2, 0.1]).view(1, 3, 1, 1)
    blurred = torch.nn.functional.avg_pool2d(image, 5, stride=1, padding=2)
    assert loss(brighter, image) < 0.01
    assert loss(blurred, image) > 10 * loss(brighter, image)


def test_unknown_content_argument_is_a_one_line_error(tmp_path):
    config = load_config(_recipe(tmp_path), ["unpaired.content_args.per_chanel=true"])
    with pytest.raises(EnhanceKitError, match="unpaired.content_args for 'structure'.*per_chanel"):
        build_task(config)


def test_per_channel_structure_loss_sees_colour_blotches_that_luma_misses():
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.random((1, 3, 64, 64), dtype=np.float32) * 0.5 + 0.25)
    # Chroma noise with zero luma: red and blue move against green, weighted so that luma stays put.
    noise = torch.from_numpy(rng.normal(0, 0.1, (1, 1, 64, 64)).astype(np.float32))
    blotched = image + noise * torch.tensor([0.587, -0.299 - 0.114, 0.587]).view(1, 3, 1, 1)
    brighter = image + torch.tensor([0.2, 0.1, 0.0]).view(1, 3, 1, 1)
    luma, per_channel = StructureLoss(), StructureLoss(per_channel=True)
    assert luma(blotched, image) < 1e-3
    assert per_channel(blotched, image) > 0.05
    assert per_channel(brighter, image) < 1e-3  # tone and colour balance stay free


def test_two_process_ddp_gan_training(tmp_path, train_cli):
    # Each GAN backward reaches one network only; plain DDP would stop at "parameters that were not used".
    trainer = {"max_epochs": 1, "accelerator": "cpu", "devices": 2, "strategy": "ddp"}
    result = train_cli(_recipe(tmp_path, trainer=trainer), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "model.safetensors").is_file()
