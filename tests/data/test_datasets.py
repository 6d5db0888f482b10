"""Dataset behaviour that the training engine does not exercise: plain Python iteration and indexing."""

from __future__ import annotations

import numpy as np
import pytest

from enhancekit.data.datasets import (
    PairedImageDataset,
    UnpairedImageDataset,
    build_paired_dataset,
    build_unpaired_dataset,
)
from enhancekit.data.degradations import parse_degradation
from enhancekit.data.io import write_image
from enhancekit.errors import EnhanceKitError


def _images(count: int, size: int = 24) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random((size, size, 1), dtype=np.float32) for _ in range(count)]


def test_paired_dataset_iteration_ends_after_len_samples():
    dataset = PairedImageDataset(_images(3), _images(3), patch_size=16, repeat=2)
    samples = list(dataset)
    assert len(samples) == len(dataset) == 6
    assert samples[0][0].shape == (1, 16, 16)


def test_unpaired_dataset_iteration_ends_after_len_samples():
    dataset = UnpairedImageDataset(_images(2), _images(5), patch_size=16, repeat=3)
    assert len(list(dataset)) == len(dataset) == 6


@pytest.mark.parametrize("index", [6, -7])
def test_out_of_range_index_raises(index):
    dataset = PairedImageDataset(_images(3), _images(3), repeat=2)
    with pytest.raises(IndexError):
        dataset[index]


def test_negative_index_counts_from_the_end():
    targets = _images(3)
    dataset = PairedImageDataset(targets, targets)
    np.testing.assert_array_equal(dataset[-1][1].numpy()[0], targets[2][..., 0])


def test_paired_volumes_share_one_intensity_scale(tmp_path):
    from enhancekit.data.datasets import build_paired_dataset

    clean = np.linspace(0, 100, 8 * 8 * 8, dtype=np.float32).reshape(8, 8, 8)
    noisy = clean.copy()
    noisy[0, 0, 0], noisy[7, 7, 7] = -20.0, 150.0  # noise widens the noisy file's range
    for folder, volume in (("noisy", noisy), ("clean", clean)):
        (tmp_path / folder).mkdir()
        np.save(tmp_path / folder / "vol.npy", volume)
    dataset = build_paired_dataset(input=tmp_path / "noisy", target=tmp_path / "clean", spatial_dims=3)
    source, target = (np.asarray(t).squeeze() for t in dataset[0])
    # Voxels the noise left alone keep one value in both; the shared range is [-20, 150].
    np.testing.assert_allclose(source[1:7, 1:7, 1:7], target[1:7, 1:7, 1:7], atol=1e-6)
    np.testing.assert_allclose(target[3, 3, 3], (clean[3, 3, 3] + 20) / 170, atol=1e-6)


def test_sr_pairs_crop_the_full_hr_image_to_the_scale(tmp_path):
    # Set5's layout: the HR file is 26 x 25, its x3 LR file was made from the 24 x 24 crop.
    (tmp_path / "hr").mkdir()
    (tmp_path / "lr").mkdir()
    hr = np.random.default_rng(0).random((26, 25, 3))
    write_image(tmp_path / "hr" / "baby.png", hr)
    write_image(tmp_path / "lr" / "babyx3.png", hr[:24:3, :24:3])
    low, high = build_paired_dataset(target=tmp_path / "hr", input=tmp_path / "lr", scale=3)[0]
    assert tuple(low.shape) == (3, 8, 8)
    assert tuple(high.shape) == (3, 24, 24)
    np.testing.assert_allclose(high.permute(1, 2, 0).numpy(), hr[:24, :24], atol=1 / 255)


def test_input_bits_clips_and_rounds_made_inputs_like_a_saved_noisy_image():
    from pathlib import Path

    from PIL import Image

    clean = (
        np.asarray(Image.open(Path(__file__).parent / "gray" / "test_001.png"), np.float32)[..., None] / 255
    )
    kwargs = {"degradation": parse_degradation("awgn:50"), "fixed_noise": True}
    unclipped, _ = PairedImageDataset([clean], **kwargs)[0]
    stored, target = PairedImageDataset([clean], input_bits=8, **kwargs)[0]
    assert unclipped.min() < 0 or unclipped.max() > 1
    np.testing.assert_allclose(
        stored.numpy(), np.round(np.clip(unclipped.numpy(), 0, 1) * 255) / 255, atol=1e-6
    )
    np.testing.assert_array_equal(target.numpy()[0], clean[..., 0])
    with pytest.raises(EnhanceKitError, match="input_bits must be 8 or 16"):
        PairedImageDataset([clean], input_bits=12, **kwargs)
    with pytest.raises(EnhanceKitError, match="not to input folders"):
        PairedImageDataset([clean], [clean], input_bits=8)


def test_saved_fraction_stores_that_share_of_the_made_inputs_as_files_and_leaves_the_rest_floats():
    from pathlib import Path

    from PIL import Image

    clean = (
        np.asarray(Image.open(Path(__file__).parent / "gray" / "test_001.png"), np.float32)[..., None] / 255
    )
    kwargs = {"degradation": parse_degradation("awgn:50"), "fixed_noise": True, "repeat": 40}
    unclipped = PairedImageDataset([clean], **kwargs)
    stored = PairedImageDataset([clean], input_bits=8, **kwargs)
    mixed = PairedImageDataset([clean], input_bits=8, saved_fraction=0.5, **kwargs)
    kinds = []
    for index in range(len(mixed)):
        sample = mixed[index][0].numpy()
        # The same noise as without a fraction: only whether it is stored as a file is drawn.
        if np.array_equal(sample, stored[index][0].numpy()):
            kinds.append("stored")
        else:
            np.testing.assert_array_equal(sample, unclipped[index][0].numpy())
            kinds.append("floats")
    assert 8 <= kinds.count("stored") <= 32, kinds
    for bad in ({"saved_fraction": 0.5}, {"input_bits": 8, "saved_fraction": 1.5}):
        with pytest.raises(EnhanceKitError, match="saved_fraction must be in"):
            PairedImageDataset([clean], **kwargs, **bad)


def test_a_patch_larger_than_an_image_names_the_file():
    from pathlib import Path

    folder = Path(__file__).parent / "gray"
    with pytest.raises(
        EnhanceKitError, match=r"test_00\d.png: an image of size 180x180 is smaller than the patch"
    ):
        build_paired_dataset(target=folder, degrade="awgn:25", patch_size=200)


def test_a_recipe_with_the_saved_noise_protocol_is_told_to_use_input_bits():
    from pathlib import Path

    folder = Path(__file__).parent / "gray"
    saved_spec = r"data.\*.degrade: awgn-saved:S is for evaluating.*input_bits: 8"
    with pytest.raises(EnhanceKitError, match=saved_spec):
        build_paired_dataset(target=folder, degrade="awgn-saved:25", patch_size=32)
    with pytest.raises(EnhanceKitError, match=r"data.\*.low_degrade: awgn-saved:S is for evaluating"):
        build_unpaired_dataset(low=folder, high=folder, low_degrade="awgn-saved:25", patch_size=32)
