"""Shared pieces of the training recipe: the seeded generator the TypeScript side uses
(mulberry32, bit-exact with functions/core/rng.ts), the unified position-id layout, and
the training-data reader (models/train/README.md, "Training data").
"""
from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

TASKS = ('t2i', 'edit', 'answer')

_U32 = 0xFFFFFFFF


def _imul(a: int, b: int) -> int:
    return (a * b) & _U32


class Mulberry32:
    """Bit-exact port of `Rng` in functions/core/rng.ts (same seed, same numbers)."""

    def __init__(self, seed: int):
        if not isinstance(seed, int):
            raise TypeError(f'seed must be an integer, got {seed!r}')
        self.state = seed & _U32

    def next(self) -> float:
        """Uniform float in [0, 1)."""
        self.state = (self.state + 0x6D2B79F5) & _U32
        t = self.state
        t = _imul(t ^ (t >> 15), t | 1)
        t ^= (t + _imul(t ^ (t >> 7), t | 61)) & _U32
        return ((t ^ (t >> 14)) & _U32) / 4294967296

    def int(self, n: int) -> int:
        """Uniform integer in [0, n)."""
        return int(self.next() * n)

    def pick(self, items: Sequence):
        if len(items) == 0:
            raise ValueError('cannot pick from an empty sequence')
        return items[self.int(len(items))]

    def shuffle(self, items: Sequence) -> list:
        """A shuffled copy (Fisher-Yates, same draws as Rng.shuffle)."""
        out = list(items)
        for i in range(len(out) - 1, 0, -1):
            j = self.int(i + 1)
            out[i], out[j] = out[j], out[i]
        return out


@dataclass(frozen=True)
class PositionLayout:
    """One fixed meaning per position id, for every task (recorded in manifest.json `model.positions`).

    Every segment is `[start, start + count)`:
      task      the task token (<t2i>, <edit>, <answer>)
      source    the source image grid of edit/answer prompts, row-major (grid*grid)
      sep       <sep>
      text      the prompt's words (instruction, question or caption)
      image     the answer image grid, row-major (t2i, edit)
      answer    the answer's text ids (answer task)
      registers the R register tokens of a sparse step
    A t2i prompt is `<t2i>` at `task.start` then its words from `text.start` (no source, no sep).
    """

    grid: int = 16
    text_len: int = 32
    answer_len: int = 32
    registers: int = 8

    @property
    def segments(self) -> Dict[str, Dict[str, int]]:
        g2 = self.grid * self.grid
        out: Dict[str, Dict[str, int]] = {}
        start = 0
        for name, count in (('task', 1), ('source', g2), ('sep', 1), ('text', self.text_len),
                            ('image', g2), ('answer', self.answer_len), ('registers', self.registers)):
            out[name] = {'start': start, 'count': count}
            start += count
        return out

    @property
    def size(self) -> int:
        s = self.segments['registers']
        return s['start'] + s['count']

    def prompt_positions(self, task: str, prompt_len: int) -> np.ndarray:
        """Position ids of a prompt of `prompt_len` real tokens (prompt-layout.ts order)."""
        seg = self.segments
        if task == 't2i':
            words = prompt_len - 1
            if words > self.text_len:
                raise ValueError(f't2i prompt has {words} words, the layout holds {self.text_len}')
            return np.concatenate([[seg['task']['start']], seg['text']['start'] + np.arange(words)]).astype(np.int64)
        g2 = self.grid * self.grid
        words = prompt_len - 2 - g2
        if words < 0 or words > self.text_len:
            raise ValueError(f'{task} prompt of {prompt_len} tokens does not fit the layout')
        return np.concatenate([
            [seg['task']['start']], seg['source']['start'] + np.arange(g2), [seg['sep']['start']],
            seg['text']['start'] + np.arange(words),
        ]).astype(np.int64)

    def answer_positions(self, task: str, answer_len: int) -> np.ndarray:
        seg = self.segments['answer' if task == 'answer' else 'image']
        if answer_len > seg['count']:
            raise ValueError(f'{task} answer of {answer_len} tokens does not fit the layout')
        return seg['start'] + np.arange(answer_len, dtype=np.int64)

    def register_positions(self) -> np.ndarray:
        return self.segments['registers']['start'] + np.arange(self.registers, dtype=np.int64)

    def to_json(self) -> dict:
        return {'grid': self.grid, 'segments': self.segments, 'size': self.size}


def prompt_text_start(task: str, grid: int = 16) -> int:
    """Index in the prompt token list where the words begin (prompt-layout.ts)."""
    return 1 if task == 't2i' else 2 + grid * grid


@dataclass
class TaskData:
    prompt: np.ndarray  # uint16 [n, P], right-padded with <pad>
    answer: np.ndarray  # uint16 [n, L]
    prompt_lens: np.ndarray  # int [n], real prompt tokens


def load_data(directory: str, tasks: Sequence[str] = TASKS) -> tuple:
    """Reads `npm run data` output: (meta dict, {task: TaskData})."""
    with open(os.path.join(directory, 'meta.json')) as f:
        meta = json.load(f)
    pad = meta['vocab']['special']['pad']
    out: Dict[str, TaskData] = {}
    for task in tasks:
        with gzip.open(os.path.join(directory, f'{task}.prompt.npy.gz')) as f:
            prompt = np.load(f)
        with gzip.open(os.path.join(directory, f'{task}.answer.npy.gz')) as f:
            answer = np.load(f)
        lens = (prompt != pad).sum(axis=1)
        out[task] = TaskData(prompt=prompt, answer=answer, prompt_lens=lens)
    return meta, out


def repo_root() -> str:
    return os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def log_line(path: Optional[str], text: str) -> None:
    import time
    line = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {text}"
    print(line, flush=True)
    if path:
        with open(path, 'a') as f:
            f.write(line + '\n')


__all__: List[str] = ['Mulberry32', 'PositionLayout', 'TaskData', 'load_data', 'prompt_text_start', 'TASKS', 'log_line', 'repo_root']
