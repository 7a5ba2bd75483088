"""Export files for the tests: a small built-in model's, rewritten or damaged on purpose."""

from __future__ import annotations

from pathlib import Path
from typing import Any
import zipfile
import zlib

import torch

from biotune_optuna.finetune import load_backbone
from biotune_optuna.finetune._export import save_finetuned


#: The built-in source of the tests' exports: timm's 100k-parameter test EfficientNet.
TIMM_SOURCE = "timm:test_efficientnet"
DIGITS = [str(d) for d in range(10)]


def timm_export(path: Path, *, image_size: int = 16) -> Path:
    """An export of a built-in source (random weights) for the ten digits."""
    torch.manual_seed(0)
    backbone = load_backbone(TIMM_SOURCE, num_classes=len(DIGITS), weights=None)
    return save_finetuned(
        backbone.model,
        path,
        backbone=backbone,
        classes=DIGITS,
        image_size=image_size,
        plan={"strategy": "biotune"},
        results={"study": "tiny", "trial": 0, "seed": 0},
    )


def rewritten(good: Path, path: Path, **fields: Any) -> Path:
    """``good``'s record with ``fields`` replaced (a field given as ``...`` is removed)."""
    record = torch.load(good, weights_only=True)
    record.update(fields)
    record = {key: value for key, value in record.items() if value is not ...}
    torch.save(record, path)
    return path


def damage(path: Path, *, count: int = 64) -> str:
    """Flip ``count`` bytes in the middle of the largest tensor's data in the export at
    ``path`` (in place); the name of the member changed."""
    with zipfile.ZipFile(path) as archive:
        member = max(
            (info for info in archive.infolist() if "/data/" in info.filename),
            key=lambda info: info.file_size,
        )
    with path.open("r+b") as file:
        file.seek(member.header_offset + 26)
        name_length, extra_length = (int.from_bytes(file.read(2), "little") for _ in range(2))
        start = member.header_offset + 30 + name_length + extra_length
        assert member.file_size > 2 * count
        file.seek(start + member.file_size // 2)
        data = file.read(count)
        file.seek(start + member.file_size // 2)
        file.write(bytes(b ^ 0xFF for b in data))
    return member.filename


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG file of ``width`` x ``height`` grey pixels, all but its pixel data: its size is in
    the header, which is all PIL reads before it refuses."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    idat = zlib.compress(b"\0" * (width + 1))  # one row
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path
