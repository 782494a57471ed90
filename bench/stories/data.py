"""Generated datasets with the shapes of the user stories (no downloads).

Each generator is deterministic in its seed and has a real, learnable signal,
so a fixed model can be shown to learn and a broken one to fail.
"""

import numpy as np


def signatures(n: int = 600, steps: int = 60, seed: int = 0) -> dict[str, np.ndarray]:
    """Story 1: pen trajectories (steps, 7), genuine vs forged, in raw tablet units.

    Forgeries are drawn with a slower, shakier hand: a lower stroke frequency and
    a tremor on the pressure channel. Sequences are zero-padded at the end to
    lengths between 60% and 100% of ``steps``.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = np.zeros((n, steps, 7), dtype="float32")
    for i in range(n):
        length = rng.integers(int(steps * 0.6), steps + 1)
        t = np.linspace(0, 1, length)
        freq = 3.0 if y[i] == 0 else 2.2
        phase = rng.uniform(0, 2 * np.pi)
        px = 2000 + 800 * np.sin(2 * np.pi * freq * t + phase) + rng.normal(0, 40, length)
        py = 1500 + 600 * np.cos(2 * np.pi * freq * t + phase) + rng.normal(0, 40, length)
        pressure = (500 + 200 * np.sin(2 * np.pi * 0.5 * t)
                    + (rng.normal(0, 80, length) if y[i] else rng.normal(0, 10, length)))
        vx, vy = np.gradient(px), np.gradient(py)
        angle = np.degrees(np.arctan2(vy, vx))
        x[i, :length] = np.stack([px, py, pressure, vx, vy, angle, t * 1000], axis=1)
    return {"x": x, "y": y.astype("int64")}


def peaks_to_position(n: int = 2500, seed: int = 0) -> dict[str, np.ndarray]:
    """Story 2: 64-long vectors, mostly zeros with a few peaks; the target is a 3-D position.

    Both MinMax-scaled to [0, 1], as the user had them.
    """
    rng = np.random.default_rng(seed)
    position = rng.uniform(0, 1, (n, 3)).astype("float32")
    x = np.zeros((n, 64, 1), dtype="float32")
    for i, (a, b, c) in enumerate(position):
        for centre, height in ((a * 20, 1.0), (22 + b * 20, 0.7), (44 + c * 19, 0.4)):
            k = int(round(centre))
            x[i, k, 0] += height
            x[i, max(k - 1, 0), 0] += height / 3
    return {"x": x / x.max(), "y": position}


def long_signals(n: int = 400, length: int = 1040, seed: int = 0) -> dict[str, np.ndarray]:
    """Story 3: 1040-long signals; the target is the amplitude of a buried oscillation."""
    rng = np.random.default_rng(seed)
    amplitude = rng.uniform(0.5, 2.0, n).astype("float32")
    t = np.arange(length) / length
    freq = rng.uniform(20, 40, (n, 1))
    x = amplitude[:, None] * np.sin(2 * np.pi * freq * t) + rng.normal(0, 0.3, (n, length))
    return {"x": x[..., None].astype("float32"), "y": amplitude}


def faces(n_per_class: int = 90, size: int = 32, classes: int = 8, seed: int = 0, noise: float = 12.0,
          label_noise: float = 0.0) -> dict[str, np.ndarray]:
    """Story 4: 8 people, colour face images with pixels 0-255.

    All faces share one skin colour: a class is told apart only by the spacing
    and height of the eyes, so a model must learn spatial layout.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    face = np.exp(-((xx - 0.5) ** 2 / 0.12 + (yy - 0.5) ** 2 / 0.18))[..., None] * np.array([1.0, 0.8, 0.7])
    images, labels = [], []
    for label in range(classes):
        gap, height = 0.12 + 0.08 * (label % 4), 0.3 + 0.25 * (label // 4)
        for _ in range(n_per_class):
            cx, cy = 0.5 + rng.normal(0, 0.03), height + rng.normal(0, 0.02)
            eyes = sum(np.exp(-((xx - cx - dx) ** 2 + (yy - cy) ** 2) / 0.003) for dx in (-gap / 2, gap / 2))
            image = 90 + 80 * face - 80 * eyes[..., None] + rng.normal(0, noise, (size, size, 3))
            images.append(np.clip(image, 0, 255))
            labels.append(label)
    labels = np.array(labels, dtype="int64")
    flip = rng.uniform(size=len(labels)) < label_noise  # mislabelled photos: only memorization fits them
    labels[flip] = rng.integers(0, classes, flip.sum())
    order = rng.permutation(len(labels))
    return {"x": np.array(images, dtype="float32")[order], "y": labels[order]}


def scans(n: int = 600, size: int = 32, seed: int = 0) -> dict[str, np.ndarray]:
    """Story 5: grey scanned pages, two classes (a horizontal vs a vertical bar), pixels 0-255."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(200, 20, (n, size, size, 1))
    for i in range(n):
        k = rng.integers(8, size - 8)
        if y[i]:
            x[i, :, k - 2:k + 2, 0] -= 120
        else:
            x[i, k - 2:k + 2, :, 0] -= 120
    return {"x": np.clip(x, 0, 255).astype("float32"), "y": y.astype("int64")}
