"""The training engine on real gray images: a recipe trains, validates, checkpoints, resumes and exports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from omegaconf import OmegaConf
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from enhancekit import EnhanceKitError, create_model
from enhancekit.losses import CompositeLoss
from enhancekit.losses.adversarial import AdversarialLoss
from enhancekit.metrics import parse_metrics
from enhancekit.training.config import load_config
from enhancekit.training.runner import (
    BestCheckpoint,
    PhaseEarlyStopping,
    _build_model,
    build_dataloaders,
    build_task,
    selection_start,
    train,
)
from enhancekit.training.tasks import AdversarialTask, RestorationTask

GRAY = Path(__file__).parents[1] / "data" / "gray"


def _recipe(tmp_path: Path, **extra) -> Path:
    recipe = {
        "name": "tiny",
        "output_dir": str(tmp_path / "run"),
        "model": {"name": "dncnn", "args": {"depth": 3, "width": 8}},
        "data": {
            "train": {
                "target": str(GRAY),
                "degrade": "awgn:25",
                "patch_size": 32,
                "augment": True,
                "repeat": 16,
                "split": [0.0, 0.67],
            },
            "val": {"target": str(GRAY), "degrade": "awgn:25", "split": [0.67, 1.0]},
            "batch_size": 8,
        },
        "loss": [{"name": "mse", "weight": 1.0}, {"name": "ssim", "weight": 0.5}],
        "optimizer": {"name": "adam", "lr": 1e-3},
        "scheduler": {"name": "plateau", "factor": 0.5, "patience": 1},
        "trainer": {"max_epochs": 3, "accelerator": "cpu", "devices": 1, "enable_model_summary": False},
        **extra,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_last_checkpoint_is_the_last_epoch_when_the_best_is_older(tmp_path):
    # lr 0 and no batch norm (depth 2): validation never beats epoch 0, so best.ckpt stays there.
    recipe = _recipe(
        tmp_path,
        model={"name": "dncnn", "args": {"depth": 2, "width": 8}},
        optimizer={"name": "adam", "lr": 0.0},
        scheduler={"name": "none"},
    )
    out = train(load_config(recipe, ["trainer.max_epochs=3"]))
    assert torch.load(out / "checkpoints" / "best.ckpt", weights_only=False)["epoch"] == 0
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["epoch"] == 2 and last["global_step"] == 3 * 8
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]


def test_a_gan_recipe_selects_and_stops_early_within_its_adversarial_phase(tmp_path):
    # lr 0 and no batch norm: every validation scores the same, so the first epoch that may be selected stays
    # the best and early stopping (patience 1) ends the run one epoch later. Counting from epoch 0, the run
    # would stop after epoch 1 with a warm-up model.
    gan = {
        "discriminator": {"name": "adl-discriminator", "args": {"in_channels": 1, "filters": [8, 8, 12, 16]}},
        "warmup_epochs": 1,
        "discriminator_warmup_epochs": 1,
    }
    recipe = _recipe(
        tmp_path,
        model={"name": "dncnn", "args": {"depth": 2, "width": 8}},
        optimizer={"name": "adam", "lr": 0.0},
        scheduler={"name": "none"},
        adversarial=gan,
        early_stopping={"patience": 1},
    )
    out = train(load_config(recipe, ["trainer.max_epochs=6", "data.train.repeat=2"]))
    assert torch.load(out / "checkpoints" / "best.ckpt", weights_only=False)["epoch"] == 2
    card = json.loads((out / "model.json").read_text())
    assert card["epochs"] == 4 and card["exported_epoch"] == 2 and card["exported_phase"] == "adversarial"


def test_selection_starts_with_the_adversarial_phase_only_when_it_is_reached(tmp_path):
    gan = {"discriminator": {"name": "adl-discriminator"}, "warmup_epochs": 3}
    gan["discriminator_warmup_epochs"] = 2
    recipe = _recipe(tmp_path, adversarial=gan)
    assert selection_start(load_config(recipe, ["trainer.max_epochs=6"])) == 5
    # A fine-tune that postpones the GAN past its last epoch selects among all its epochs.
    assert selection_start(load_config(recipe, ["trainer.max_epochs=5"])) == 0
    assert selection_start(load_config(recipe, ["trainer.max_epochs=-1"])) == 5  # until max_time
    assert selection_start(load_config(_recipe(tmp_path))) == 0  # (rewrites the recipe file)


def test_phase_aware_callbacks_keep_lightnings_state_keys():
    # Checkpoints written by Lightning's own classes must resume with their best score and patience.
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    settings = {"monitor": "val/psnr", "mode": "max"}
    assert BestCheckpoint(first_epoch=3, **settings).state_key == ModelCheckpoint(**settings).state_key
    stopping = PhaseEarlyStopping(patience=2, first_epoch=3, **settings)
    assert stopping.state_key == EarlyStopping(patience=2, **settings).state_key


def test_resume_with_more_epochs_follows_the_new_linear_decay(tmp_path):
    recipe = _recipe(tmp_path, scheduler={"name": "linear_decay", "start_epoch": 0})
    out = train(load_config(recipe, ["trainer.max_epochs=2"]))
    train(load_config(recipe, ["trainer.max_epochs=4"]), resume=out / "checkpoints" / "last.ckpt")
    with (out / "logs" / "metrics.csv").open() as metrics_file:
        rates = [float(row["lr-Adam"]) for row in csv.DictReader(metrics_file) if row.get("lr-Adam")]
    # Two epochs decaying to 0 at epoch 2, then the 4-epoch schedule from epoch 2 (the old optimiser held 0).
    assert rates == pytest.approx([1e-3, 5e-4, 5e-4, 2.5e-4])


def test_checkpoints_hold_the_plateau_step_of_their_epoch(tmp_path):
    # Lightning does not replay a plateau step on resume, so last.ckpt must already hold it.
    out = train(load_config(_recipe(tmp_path), ["trainer.max_epochs=2"]))
    for name in ("last.ckpt", "best.ckpt"):
        checkpoint = torch.load(out / "checkpoints" / name, weights_only=False)
        assert checkpoint["lr_schedulers"][0]["last_epoch"] == checkpoint["epoch"] + 1, name


def test_recipe_trains_and_exports(tmp_path):
    out = train(load_config(_recipe(tmp_path), ["trainer.max_epochs=4", "model.args.width=32"]))
    rows = list(csv.DictReader((out / "logs" / "metrics.csv").open()))
    val_psnr = [float(r["val/psnr"]) for r in rows if r.get("val/psnr")]
    assert len(val_psnr) == 4
    # The noisy input at sigma 25 scores ~20.2 dB; four short epochs of a small DnCNN must already denoise.
    assert max(val_psnr) > 21.0
    assert (out / "checkpoints" / "best.ckpt").is_file() and (out / "checkpoints" / "last.ckpt").is_file()
    run = yaml.safe_load((out / "run.yaml").read_text())
    assert run["seed"] == 0 and run["recipe"]["model"]["name"] == "dncnn"
    card = json.loads((out / "model.json").read_text())
    assert card["best_checkpoint"]["score"] == pytest.approx(max(val_psnr), abs=1e-4)
    assert card["exported_epoch"] == int(np.argmax(val_psnr)) and "exported_phase" not in card
    # The exported weights are the best epoch's, and load through the registry.
    best = torch.load(out / "checkpoints" / "best.ckpt", weights_only=False)["state_dict"]
    exported = load_file(str(out / "model.safetensors"))
    # Readable like the run's other files (safetensors' own writer made it owner-only).
    assert (out / "model.safetensors").stat().st_mode & 0o077 == (out / "model.json").stat().st_mode & 0o077
    for key, value in exported.items():
        torch.testing.assert_close(value, best[f"model.{key}"])
    create_model("dncnn", depth=3, width=32, weights=out / "model.safetensors")
    assert any((out / "logs").glob("events.out.tfevents.*"))
    # A finished run is never overwritten by accident.
    with pytest.raises(EnhanceKitError, match="finished run"):
        train(load_config(_recipe(tmp_path)))


def test_ema_weights_are_validated_and_exported(tmp_path):
    recipe = _recipe(tmp_path, early_stopping={"restore_best": False}, ema={"decay": 0.9})
    out = train(load_config(recipe, ["trainer.max_epochs=2"]))
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    exported = load_file(str(out / "model.safetensors"))
    # Readable like the run's other files (safetensors' own writer made it owner-only).
    assert (out / "model.safetensors").stat().st_mode & 0o077 == (out / "model.json").stat().st_mode & 0o077
    # The checkpoint's state_dict is the average (what validation scored), the raw weights are kept apart for
    # resuming, and the exported model is the average.
    assert "current_model_state" in last
    raw_differs = False
    for key, value in exported.items():
        torch.testing.assert_close(value, last["state_dict"][f"model.{key}"])
        raw_differs |= not torch.equal(value, last["current_model_state"][f"model.{key}"])
    assert raw_differs
    assert json.loads((out / "model.json").read_text())["exported_epoch"] == 1  # the last of two
    with pytest.raises(EnhanceKitError, match="ema.decay"):
        train(load_config(recipe, ["ema.decay=1.5", f"output_dir={tmp_path / 'bad'}"]))


def test_resume_continues_the_epoch_count_with_fresh_data(tmp_path, monkeypatch):
    batches: list[torch.Tensor] = []
    original_step = RestorationTask.training_step

    def recording_step(self, batch, batch_idx):
        batches.append(batch[1].clone())
        return original_step(self, batch, batch_idx)

    monkeypatch.setattr(RestorationTask, "training_step", recording_step)
    recipe = _recipe(tmp_path)
    out = train(load_config(recipe, ["trainer.max_epochs=1"]))
    last = out / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["epoch"] == 0
    first_run = list(batches)
    batches.clear()
    train(load_config(recipe, ["trainer.max_epochs=2"]), resume=last)
    state = torch.load(last, weights_only=False)
    assert state["epoch"] == 1 and state["global_step"] == 2 * 8  # 2 epochs of 64 patches / batch 8
    # The resumed epoch draws new crops instead of replaying the first epoch's.
    assert len(batches) == len(first_run) == 8
    assert not any(torch.equal(a, b) for a, b in zip(batches, first_run, strict=True))
    assert yaml.safe_load((out / "run.yaml").read_text())["resume"] is None
    assert yaml.safe_load((out / "run.resume-step8.yaml").read_text())["resume"] == str(last)
    # metrics.csv keeps the first run's rows and adds the resumed epoch's under the same header.
    with (out / "logs" / "metrics.csv").open() as metrics_file:
        validated_epochs = [row["epoch"] for row in csv.DictReader(metrics_file) if row.get("val/psnr")]
    assert validated_epochs == ["0", "1"]
    with pytest.raises(EnhanceKitError, match="cannot read checkpoint"):
        train(load_config(recipe, ["trainer.max_epochs=3"]), resume=recipe)


def test_early_stopping_stops(tmp_path):
    # lr 0 cannot improve, so patience 1 stops after two validations of ten allowed epochs.
    recipe = _recipe(
        tmp_path,
        early_stopping={"patience": 1},
        optimizer={"name": "adam", "lr": 0.0},
        scheduler={"name": "none"},
    )
    out = train(load_config(recipe, ["trainer.max_epochs=10"]))
    rows = list(csv.DictReader((out / "logs" / "metrics.csv").open()))
    assert len([r for r in rows if r.get("val/psnr")]) == 2


def test_linear_decay_schedule_reaches_zero(tmp_path):
    recipe = _recipe(tmp_path, scheduler={"name": "linear_decay", "start_epoch": 1})
    out = train(load_config(recipe, ["trainer.max_epochs=3"]))
    rows = list(csv.DictReader((out / "logs" / "metrics.csv").open()))
    lrs = [float(r["lr-Adam"]) for r in rows if r.get("lr-Adam")]
    assert lrs == pytest.approx([1e-3, 1e-3, 0.5e-3])


def test_config_errors_are_user_errors(tmp_path):
    with pytest.raises(EnhanceKitError, match="recipe not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(EnhanceKitError, match="key=value"):
        load_config(_recipe(tmp_path), ["trainer.max_epochs"])
    with pytest.raises(EnhanceKitError, match="unknown model"):
        train(load_config(_recipe(tmp_path), ["model.name=nope"]))
    with pytest.raises(EnhanceKitError, match="needs validation data"):
        build_task(load_config(_recipe(tmp_path), ["data.val=null"]))
    gan = {"discriminator": {"name": "adl-discriminator"}, "warmup_epochs": 1}
    with pytest.raises(EnhanceKitError, match="check_val_every_n_epoch"):
        build_task(load_config(_recipe(tmp_path, adversarial=gan), ["trainer.check_val_every_n_epoch=2"]))
    # The plateau schedule reads every epoch's validation score; Lightning fails on epochs without one.
    with pytest.raises(EnhanceKitError, match="check_val_every_n_epoch"):
        build_task(load_config(_recipe(tmp_path), ["trainer.check_val_every_n_epoch=2"]))
    with pytest.raises(EnhanceKitError, match="val_check_interval"):
        build_task(load_config(_recipe(tmp_path, adversarial=gan), ["trainer.val_check_interval=0.5"]))
    build_task(load_config(_recipe(tmp_path), ["trainer.check_val_every_n_epoch=2", "scheduler.name=none"]))
    config = load_config(_recipe(tmp_path), ["data.train.patch_size=40"])
    config.model = {"name": "lowlight-unet-spec", "args": {"base_width": 2, "depth": 5}}
    with pytest.raises(EnhanceKitError, match="patch_size 40 must be a multiple of 16"):
        build_dataloaders(config, build_task(config)[0].model)
    # A recipe may leave the model's arguments at their defaults.
    task, _ = build_task(load_config(_recipe(tmp_path), ["model.args=null", "scheduler.name=none"]))
    assert task.model.body[0].out_channels == 64


def _quiet_trainer(max_epochs: int) -> L.Trainer:
    return L.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


class _PatchDiscriminator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(8, 1, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.net(x), self.net(nn.functional.avg_pool2d(x, 2))]  # two scales


def _snapshot(module: nn.Module) -> list[torch.Tensor]:
    # Buffers too: a frozen network must keep its batch-norm statistics.
    return [t.detach().clone() for t in module.state_dict().values()]


def _changed(before: list[torch.Tensor], module: nn.Module) -> bool:
    return not all(torch.equal(a, b) for a, b in zip(before, module.state_dict().values(), strict=True))


def _gan_task(generator: nn.Module, discriminator: nn.Module, kind: str, **kwargs) -> AdversarialTask:
    settings = {"adversarial_weight": 0.1, "warmup_epochs": 1, "discriminator_warmup_epochs": 1, **kwargs}
    loss = settings.pop("loss", CompositeLoss([{"name": "l1"}]))
    return AdversarialTask(
        generator,
        discriminator,
        loss,
        adversarial_loss=AdversarialLoss(kind),
        discriminator_optimizer={"name": "adam", "lr": 1e-3},
        optimizer={"name": "adam", "lr": 1e-3},
        scheduler={"name": "step", "step_size": 1},
        metrics=parse_metrics("psnr"),
        monitor="psnr",
        **settings,
    )


@pytest.mark.parametrize("kind", ["vanilla", "relativistic_hinge"])
def test_gan_training_runs_the_three_phases(tmp_path, kind):
    config = load_config(_recipe(tmp_path))
    # In training mode, as the runner builds it: its batch norm would update running statistics.
    generator = create_model("dncnn", depth=3, width=8, pretrained=False).train()
    discriminator = _PatchDiscriminator()
    task = _gan_task(generator, discriminator, kind)
    train_loader, val_loader = build_dataloaders(config, generator)
    # (warm-up epochs, discriminator warm-up epochs) that put a fresh trainer's epoch 0 in each phase.
    phases = {
        "generator": ((1, 1), True, False),
        "discriminator": ((0, 1), False, True),
        "adversarial": ((0, 0), True, True),
    }
    for phase, ((warmup, d_warmup), g_moves, d_moves) in phases.items():
        g_before, d_before = _snapshot(generator), _snapshot(discriminator)
        task.warmup_epochs, task.discriminator_warmup_epochs = warmup, d_warmup
        _quiet_trainer(max_epochs=1).fit(task, train_loader, val_loader)
        assert _changed(g_before, generator) == g_moves, phase
        assert _changed(d_before, discriminator) == d_moves, phase


def _parameters(module: nn.Module) -> list[torch.Tensor]:
    # Parameters only: batch-norm running statistics move in training mode even without any gradient.
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize("adversarial_weight", [1.0, 0.0])
def test_adversarial_gradient_reaches_the_denoiser(tmp_path, adversarial_weight):
    # ADL's reference code fed the discriminator the noisy input, so no adversarial gradient reached the
    # denoiser. Here, with the pixel loss weighted 0, only the adversarial term can move the denoiser's
    # weights; the weight-0 control shows that nothing else does.
    config = load_config(_tiny_adl_recipe(tmp_path))
    generator = create_model("adl", filters=[8, 8, 12, 16], pretrained=False)
    discriminator = create_model("adl-discriminator", filters=[4, 4, 6, 8], pretrained=False)
    seen = []
    discriminator.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    task = _gan_task(
        generator,
        discriminator,
        "vanilla",
        warmup_epochs=0,
        discriminator_warmup_epochs=0,
        adversarial_weight=adversarial_weight,
        loss=CompositeLoss([{"name": "l1", "weight": 0.0}]),
    )
    train_loader, val_loader = build_dataloaders(config, generator)
    before = _parameters(generator)
    trainer = _quiet_trainer(max_epochs=2)
    trainer.fit(task, train_loader, val_loader)
    moved = [not torch.equal(a, b) for a, b in zip(before, _parameters(generator), strict=True)]
    if adversarial_weight:
        # Everything on the path to the full-size output learns from the adversarial term, down to the input's
        # feature extractor; the x1/2 and x1/4 heads do not, as the discriminator only judges the x1 output.
        names = [name for name, _ in generator.named_parameters()]
        still = {name for name, m in zip(names, moved, strict=True) if not m}
        assert still == {name for name in names if name.startswith(("heads.1.", "heads.2."))}
        # The generator's step shows the discriminator a tensor still attached to the denoiser's graph.
        assert any(x.requires_grad for x in seen)
    else:
        assert not any(moved)
    assert trainer.callback_metrics["train/d_loss"] > 0
    # The step schedule (x0.5) stepped once per epoch, twice, for both optimisers.
    assert [o.param_groups[0]["lr"] for o in trainer.optimizers] == pytest.approx([2.5e-4, 2.5e-4])


def _tiny_adl_recipe(tmp_path: Path, **extra) -> Path:
    return _recipe(
        tmp_path,
        model={"name": "adl", "args": {"filters": [8, 8, 12, 16]}},
        loss=[
            {"name": "l1", "weight": 1.0},
            {"name": "pyramid", "weight": 0.1},
            {"name": "histogram", "weight": 0.1},
        ],
        loss_scales=[1.0, 0.5, 0.25],
        **extra,
    )


def test_deep_supervision_trains_every_output_head(tmp_path):
    config = load_config(_tiny_adl_recipe(tmp_path))
    task, _ = build_task(config)
    inputs, targets = next(iter(build_dataloaders(config, task.model)[0]))
    output, total, parts = task.supervised_loss(inputs, targets)
    assert output.shape == targets.shape
    # One set of terms per scale, the coarser ones against the pooled target.
    assert {"l1", "l1@x1/2", "l1@x1/4", "histogram@x1/4"} <= set(parts)
    total.backward()
    for head in task.model.heads:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head[-1].parameters())
    # Without loss_scales only the full-resolution head learns.
    plain, _ = build_task(load_config(_tiny_adl_recipe(tmp_path), ["loss_scales=null"]))
    plain.supervised_loss(inputs, targets)[1].backward()
    assert all(p.grad is None for p in plain.model.heads[2].parameters())


def test_loss_scales_need_a_multiscale_model(tmp_path):
    with pytest.raises(EnhanceKitError, match="multi-scale outputs"):
        build_task(load_config(_recipe(tmp_path), ["loss_scales=[1.0,0.5]"]))
    with pytest.raises(EnhanceKitError, match="non-negative"):
        build_task(load_config(_tiny_adl_recipe(tmp_path), ["loss_scales=[0.0]"]))


def test_adl_recipe_with_its_discriminator_trains_end_to_end(tmp_path):
    adversarial = {
        "discriminator": {"name": "adl-discriminator", "args": {"filters": [8, 8, 12, 16]}},
        "loss": "vanilla",
        "weight": 0.01,
        "warmup_epochs": 1,
        "discriminator_warmup_epochs": 1,
    }
    recipe = _tiny_adl_recipe(tmp_path, adversarial=adversarial)
    overrides = ["trainer.max_epochs=3", "data.train.repeat=4", "trainer.log_every_n_steps=1"]
    out = train(load_config(recipe, overrides))
    rows = list(csv.DictReader((out / "logs" / "metrics.csv").open()))
    logged = {key for row in rows for key, value in row.items() if value}
    assert {"train/d_loss", "train/adversarial", "train/pyramid@x1/2", "val/psnr"} <= logged
    card = json.loads((out / "model.json").read_text())
    assert card["model"] == "adl" and card["args"]["filters"] == [8, 8, 12, 16]
    # Only the adversarial epoch (the last) may be selected.
    assert torch.load(out / "checkpoints" / "best.ckpt", weights_only=False)["epoch"] == 2
    assert card["exported_epoch"] == 2 and card["exported_phase"] == "adversarial"
    create_model("adl", weights=out / "model.safetensors")
    # Copied without its card, the file still rebuilds the trained widths from its own metadata.
    alone = tmp_path / "copied" / "adl.safetensors"
    alone.parent.mkdir()
    alone.write_bytes((out / "model.safetensors").read_bytes())
    rebuilt = create_model("adl", weights=alone)  # the default widths would not load these tensors
    assert sum(p.numel() for p in rebuilt.parameters()) == card["parameters"]


def test_3d_recipe_trains_on_volumes(tmp_path):
    import nibabel as nib

    source = nib.load(Path(__file__).parents[1] / "data" / "volumes" / "CT_pitch.nii.gz")
    data = np.asarray(source.dataobj)
    folder = tmp_path / "volumes"
    folder.mkdir()
    for name, crop in {"a": (slice(30, 73), slice(50, 95)), "b": (slice(90, 138), slice(120, 168))}.items():
        nib.save(
            nib.Nifti1Image(data[crop][..., 20:44], source.affine, source.header), folder / f"{name}.nii.gz"
        )
    recipe = _recipe(
        tmp_path,
        model={"name": "adl-3d", "args": {"filters": [4, 4, 8, 8]}},
        data={
            "train": {
                "target": str(folder),
                "degrade": "awgn:0-50",
                "patch_size": [16, 16, 16],
                "augment": True,
                "repeat": 8,
                "split": [0.0, 0.5],
            },
            "val": {"target": str(folder), "degrade": "awgn:25", "split": [0.5, 1.0]},
            "batch_size": 4,
        },
        loss=[{"name": "l1"}, {"name": "pyramid", "weight": 0.1}, {"name": "histogram", "weight": 0.1}],
        loss_scales=[1.0, 0.5, 0.25],
    )
    # The validation volume ("a", 43 x 45 x 24) is padded to multiples of 8 and cropped back on every axis.
    out = train(load_config(recipe, ["trainer.max_epochs=2"]))
    rows = list(csv.DictReader((out / "logs" / "metrics.csv").open()))
    ssim_3d = [float(r["val/ssim"]) for r in rows if r.get("val/ssim")]
    assert len(ssim_3d) == 2 and all(0 < v < 1 for v in ssim_3d)
    model = create_model("adl-3d", weights=out / "model.safetensors")
    assert model.spatial_dims == 3


def test_malformed_recipes_and_mistyped_sections_are_user_errors(tmp_path):
    (tmp_path / "syntax.yaml").write_text("model: [dncnn\n")
    with pytest.raises(EnhanceKitError, match="bad recipe"):
        load_config(tmp_path / "syntax.yaml")
    (tmp_path / "list.yaml").write_text("- model\n- data\n")
    with pytest.raises(EnhanceKitError, match="must be a mapping"):
        load_config(tmp_path / "list.yaml")
    with pytest.raises(EnhanceKitError, match="unknown section 'optimzer' in --set"):
        load_config(_recipe(tmp_path), ["optimzer.lr=0.5"])
    with pytest.raises(EnhanceKitError, match="loss term 'l1'"):
        build_task(load_config(_recipe(tmp_path), ["loss=[{name: l1, wieght: 1}]"]))


def test_interrupted_runs_are_resumed_not_overwritten_and_checkpoints_rebuild_their_network(tmp_path):
    recipe = _recipe(tmp_path)
    out = train(load_config(recipe, ["trainer.max_epochs=1", "model.args.width=12", "scheduler.name=none"]))
    # An interrupted run has checkpoints but no exported model.
    (out / "model.safetensors").unlink()
    before = (out / "checkpoints" / "last.ckpt").read_bytes()
    with pytest.raises(EnhanceKitError, match="interrupted run; continue it with --resume"):
        train(load_config(recipe, ["trainer.max_epochs=1"]))
    assert (out / "checkpoints" / "last.ckpt").read_bytes() == before
    # The checkpoint names its network: width 12, not the registry's default.
    model = create_model("dncnn", weights=out / "checkpoints" / "last.ckpt")
    assert model.body[0].out_channels == 12
    with pytest.raises(EnhanceKitError, match="does not fit this recipe's networks"):
        train(load_config(recipe, ["trainer.max_epochs=2"]), resume=out / "checkpoints" / "last.ckpt")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.train.patchsize=32", "unknown key data.train.patchsize"),
        ("data.val.degrad=awgn:25", "unknown key data.val.degrad"),
        ("trainer.max_epoch=1", "unknown key trainer.max_epoch"),
        ("trainer.max_time=5min", "bad trainer settings"),
        ("optimizer.lr=-0.001", "learning rate must be a number >= 0"),
        ("optimizer.lr=abc", "learning rate must be a number >= 0"),
        ("optimizer.lrr=0.1", "optimizer adam: .*lrr"),
        ("data.batch_size=0", "data.batch_size must be >= 1"),
        ("data.train.patch_size=0", "patch_size must be at least 1"),
        ("data.train.repeat=0", "repeat must be at least 1"),
        ("data.train.input=" + str(GRAY), "not both"),
        ("data.val.split=[0.9,0.91]", "keeps none of them"),
        ("loss=[{name: mse, weight: -1}]", "must not be negative"),
    ],
)
def test_recipe_mistakes_inside_sections_are_one_line_errors(tmp_path, override, message):
    with pytest.raises(EnhanceKitError, match=message):
        train(load_config(_recipe(tmp_path), ["trainer.max_epochs=1", override]))


def test_a_shipped_model_name_fine_tunes_its_weights_and_pairs_must_match_in_size(tmp_path):

    shipped = create_model("dncnn-gray")
    tuned = _build_model(OmegaConf.create({"name": "dncnn-gray"}))
    assert all(
        torch.equal(a, b)
        for a, b in zip(shipped.state_dict().values(), tuned.state_dict().values(), strict=True)
    )
    scratch = _build_model(OmegaConf.create({"name": "dncnn", "args": {"depth": 17, "width": 64}}))
    assert not torch.equal(next(iter(scratch.parameters())), next(iter(tuned.parameters())))
    low, high = tmp_path / "low", tmp_path / "high"
    low.mkdir(), high.mkdir()
    image = np.asarray(Image.open(GRAY / "test_001.png"))
    Image.fromarray(image).save(low / "a.png")
    Image.fromarray(image[:, :160]).save(high / "a.png")
    overrides = [f"data.train.input={low}", f"data.train.target={high}", "data.train.degrade=null"]
    with pytest.raises(EnhanceKitError, match=r"a.png is 160x180 but its input .*a.png is 180x180"):
        build_dataloaders(load_config(_recipe(tmp_path), overrides), create_model("dncnn", pretrained=False))
