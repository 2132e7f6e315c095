"""A tiny U-Net that denoises scikit-learn's 8x8 digits.

The encoder convolves and max-pools twice (8x8 -> 4x4 -> 2x2); the decoder upsamples with
learned transposed convolutions (ConvTranspose2d, kernel 2, stride 2) and concatenates
each encoder level's features (the skip connections) before convolving again; a 1x1
convolution predicts the correction to the noisy image. Training images get fresh
Gaussian noise in every batch; the held-out 20% get one fixed draw. Reports the PSNR of
the noisy and the denoised held-out images against the clean ones, and the gain.

    python examples/unet_denoise.py [--epochs 30] [--noise 0.3] [--backend llvm|numpy]
                                    [--out DIR]

Writes the loss curve to DIR/unet_denoise_curves.png (needs matplotlib).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

import graphc as gc
from graphc import nn


def double_conv(in_channels: int, channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())


class UNet(nn.Module):
    """(N, 1, 8, 8) noisy images -> (N, 1, 8, 8) denoised images."""

    def __init__(self, width: int = 16):
        self.enc1 = double_conv(1, width)                  # 8 x 8
        self.enc2 = double_conv(width, 2 * width)          # 4 x 4
        self.bottom = double_conv(2 * width, 4 * width)    # 2 x 2
        self.pool = nn.MaxPool2d(2)
        self.up2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2)  # 2 -> 4
        self.dec2 = double_conv(4 * width, 2 * width)      # after the skip concat
        self.up1 = nn.ConvTranspose2d(2 * width, width, 2, stride=2)      # 4 -> 8
        self.dec1 = double_conv(2 * width, width)
        self.head = nn.Conv2d(width, 1, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        bottom = self.bottom(self.pool(e2))
        d2 = self.dec2(gc.concat([self.up2(bottom), e2], axis=1))
        d1 = self.dec1(gc.concat([self.up1(d2), e1], axis=1))
        return x + self.head(d1)  # the noisy image plus a learned correction


def psnr(images: np.ndarray, clean: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for pixels in [0, 1]: 10 log10(1 / MSE)."""
    mse = float(np.mean((images.astype(np.float64) - clean) ** 2))
    return 10 * math.log10(1.0 / mse)


def main(epochs: int = 30, noise: float = 0.3, backend: str = "llvm",
         progress: bool | None = None, verbose: bool = True, out: str | None = None,
         train_size: int | None = None, width: int = 16, threads: int | None = None) -> dict:
    images, _ = gc.data.load_digits()
    images = images[:, None]                                         # (N, 1, 8, 8) in [0, 1]
    clean_train, clean_test = gc.data.train_test_split(images, test_size=0.2, seed=0)
    if train_size is not None:  # a shortened run (tests)
        clean_train = clean_train[:train_size]
    add_noise = gc.data.GaussianNoise(noise)
    noisy_test = add_noise(clean_test, np.random.default_rng(1234)).astype(np.float32)

    nn.manual_seed(0)
    model = UNet(width)
    optimizer = gc.optim.Adam(model.parameters(), lr=2e-3)
    schedule = gc.optim.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=1e-4)
    trainer = gc.train.Trainer(model, optimizer, loss="mse", schedule=schedule,
                               backend=backend, threads=threads)
    start = time.perf_counter()
    history = trainer.fit(clean_train, clean_train, epochs=epochs, batch_size=32,
                          validation=(noisy_test, clean_test), transform=add_noise,
                          progress=progress)
    seconds = time.perf_counter() - start
    denoised = trainer.predict(noisy_test)
    before, after = psnr(noisy_test, clean_test), psnr(denoised, clean_test)
    if verbose:
        print(f"U-Net denoising digits (noise std {noise}): held-out PSNR {before:.2f} dB "
              f"noisy -> {after:.2f} dB denoised, a gain of {after - before:.2f} dB after "
              f"{epochs} epochs, {seconds:.1f} s on the {backend} backend")
    curves = history.save_curves(out, "unet_denoise", "U-Net denoising digits")
    if curves:
        print(f"wrote {curves}")
    return {"history": history, "psnr_noisy": before, "psnr_denoised": after,
            "gain": after - before, "seconds": seconds, "curves": curves}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--noise", type=float, default=0.3)
    parser.add_argument("--backend", default="llvm", choices=["llvm", "numpy"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=".", help="directory for the curves (default: .; "
                        "'' for none)")
    args = parser.parse_args()
    main(args.epochs, args.noise, args.backend, out=args.out, threads=args.threads)
