"""The zip archive that ``torch.save`` writes, its bytes checked against their CRC-32.

``torch.load`` does not check them: a file with flipped bytes loads with wrong weights. Exports
(:func:`~biotune_optuna.finetune._export_record.check_intact`) and training checkpoints
(:class:`~biotune_optuna.finetune._checkpoints.TrainingCheckpoints`) are checked here first.
"""

from __future__ import annotations

from pathlib import Path
import zipfile


__all__ = ["zip_damage"]


def zip_damage(path: Path) -> str | None:
    """What is wrong with the zip archive at ``path``, in one line (``None``: it is a zip
    archive and every member matches its CRC-32).

    Raises:
        FileNotFoundError: If there is no file.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as error:
        return " ".join(f"{type(error).__name__}: {error}".split())[:120]
    return None if bad is None else f"{bad} does not match its CRC-32"
