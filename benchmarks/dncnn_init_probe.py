"""Does DnCNN-17 (width 64) start learning at Adam 1e-3? PyTorch's default init of the noise head against
the zero init DnCNN now uses: 100 steps of blind (sigma 0-55) 40x40 Train400 crops, batch 16, one thread;
validation PSNR on 20 held-out 96x96 crops at sigma 25 (the noisy input scores about 20.4 dB).

    OMP_NUM_THREADS=1 python benchmarks/dncnn_init_probe.py {default,zero} [LR] [STEPS] [DATA_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from enhancekit import create_model


def main() -> None:
    mode = sys.argv[1]
    lr = float(sys.argv[2]) if len(sys.argv) > 2 else 1e-3
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    data = Path(sys.argv[4] if len(sys.argv) > 4 else "../shared/data") / "train" / "train400"
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    files = sorted(data.glob("*.png"))
    images = [np.asarray(Image.open(f).convert("L"), np.float32) / 255 for f in files]
    train, held_out = images[:320], [im[:96, :96] for im in images[320:340]]
    model = create_model("dncnn", pretrained=False)
    if mode == "default":
        model.body[-1].reset_parameters()
    optimizer = torch.optim.Adam(model.parameters(), lr)
    val_clean = torch.from_numpy(np.stack(held_out))[:, None]
    noise = torch.randn(val_clean.shape, generator=torch.Generator().manual_seed(1))
    val_noisy = val_clean + 25 / 255 * noise
    for step in range(1, steps + 1):
        crops = []
        for _ in range(16):
            image = train[rng.integers(len(train))]
            i, j = rng.integers(0, image.shape[0] - 40), rng.integers(0, image.shape[1] - 40)
            crops.append(image[i : i + 40, j : j + 40])
        clean = torch.from_numpy(np.stack(crops))[:, None]
        sigma = torch.from_numpy(rng.uniform(0, 55 / 255, (16, 1, 1, 1)).astype(np.float32))
        loss = torch.nn.functional.mse_loss(model(clean + sigma * torch.randn_like(clean)), clean)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 25 == 0:
            model.eval()
            with torch.no_grad():
                mse = torch.nn.functional.mse_loss(model(val_noisy).clamp(0, 1), val_clean).item()
            model.train()
            psnr = 10 * np.log10(1 / mse)
            print(f"{mode} lr {lr:g} step {step}: train MSE {loss.item():.5f}, held-out PSNR {psnr:.2f}")


if __name__ == "__main__":
    main()
