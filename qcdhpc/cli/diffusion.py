"""The diffusion-model family's verbs: `train`, `sample`, `toy-cumulants` (one module each)."""
from __future__ import annotations

from . import sample, toy, train

VERBS = ("train", "sample", "toy-cumulants")


def add_parsers(sub) -> None:
    train.add_parser(sub)
    sample.add_parser(sub)
    toy.add_parser(sub)
