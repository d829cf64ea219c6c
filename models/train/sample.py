"""The reference MDM sampler, dense and sparse (models/train/SAMPLING.md is its specification;
functions/sampler implements the same rules in TypeScript and is checked against the golden
traces this module writes).

    /usr/bin/python3 models/train/sample.py eval --checkpoint CKPT --sampler sparse --n 200 --seed 11 [--json OUT]
    /usr/bin/python3 models/train/sample.py golden --checkpoint CKPT --out test/fixtures/golden-traces.json

`eval` exports cases through `npm run eval -- --export`, samples them here and scores the
outputs with `npm run eval -- --score` (the TypeScript scorer). Where Node.js is missing
(e.g. a GPU machine), pass `--cases FILE` exported elsewhere and `--outputs FILE`, and
score later with `npm run eval -- --score FILE`.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Mulberry32, PositionLayout, repo_root  # noqa: E402
from model import NEG_INF, Denoiser, load_checkpoint  # noqa: E402

KV = Tuple[torch.Tensor, torch.Tensor]


# ---------------------------------------------------------------------------------------
# Schedules and orders (SAMPLING.md sections 2 and 3)

def round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def masked_fraction(kind: str, shift: float, t: float) -> float:
    """Share of the answer still masked at time t (t runs from 1 to 0)."""
    if kind == 'shift':
        return shift * t / (1 + (shift - 1) * t)
    if kind == 'cosine':
        return math.cos(math.pi / 2 * (1 - t))
    raise ValueError(f'unknown schedule {kind!r}')


def decoded_counts(length: int, steps: int, kind: str = 'shift', shift: float = 3.0) -> List[int]:
    """Tokens decoded at each step: >= 1 each, summing to `length`."""
    if not 1 <= steps <= length:
        raise ValueError(f'steps must be in 1..{length}, got {steps}')
    counts: List[int] = []
    done = 0
    for k in range(1, steps + 1):
        target = length - round_half_up(length * masked_fraction(kind, shift, 1 - k / steps))
        target = max(done + 1, min(target, length - (steps - k)))
        counts.append(target - done)
        done = target
    return counts


def stratified_order(grid: int, rng: Mulberry32) -> List[int]:
    """Coarse-to-fine order over a grid*grid image: one position per cell of a 2x2 split,
    then of a 4x4 split (cells already holding a position are skipped), ... down to single
    positions. `grid` must be a power of two."""
    chosen = set()
    order: List[int] = []
    n = 2
    while n <= grid:
        b = grid // n
        for cell in rng.shuffle(range(n * n)):
            r0, c0 = (cell // n) * b, (cell % n) * b
            members = [(r0 + i) * grid + (c0 + j) for i in range(b) for j in range(b)]
            if any(m in chosen for m in members):
                continue
            p = members[rng.int(b * b)]
            chosen.add(p)
            order.append(p)
        n *= 2
    return order


def text_block_counts(block: int, steps: int) -> List[int]:
    """Tokens committed at each of `steps` steps within one text block (>= 1 each)."""
    if not 1 <= steps <= block:
        raise ValueError(f'steps per block must be in 1..{block}, got {steps}')
    return [(block * k) // steps - (block * (k - 1)) // steps for k in range(1, steps + 1)]


# ---------------------------------------------------------------------------------------
# Options and traces

@dataclass
class SampleOptions:
    mode: str = 'sparse'  # 'dense' | 'sparse'
    steps: int = 16
    schedule: str = 'shift'
    shift: float = 3.0
    temperature: float = 1.0
    guidance: float = 1.0
    seed: int = 0
    text_block: int = 8
    registers: Optional[int] = None  # None: the model's R; 0 removes them (ablation)


@dataclass
class StepRecord:
    positions: List[int]  # answer indices decoded at this step
    tokens: List[int]


@dataclass
class SampleResult:
    answer: List[int]
    steps: List[StepRecord] = field(default_factory=list)
    tokens_in: int = 0  # tokens pushed through the network (all branches, prefill included)


# ---------------------------------------------------------------------------------------
# The denoiser calls: one branch, dense or sparse with its own cache

class Branch:
    """One guidance branch: its prompt and, in sparse mode, its KV cache."""

    def __init__(self, model: Denoiser, layout: PositionLayout, task: str, prompt: Sequence[int]):
        self.model = model
        self.layout = layout
        self.task = task
        self.prompt = torch.tensor(list(prompt), dtype=torch.long)
        self.prompt_pos = torch.from_numpy(layout.prompt_positions(task, len(prompt)))
        self.cache: Optional[List[KV]] = None
        self.prev: List[Tuple[int, int]] = []  # (answer index, token) decoded last step
        self.tokens_in = 0

    def dense_logits(self, answer: List[int], mask_id: int, positions: Sequence[int], answer_pos: torch.Tensor) -> torch.Tensor:
        ids = torch.cat([self.prompt, torch.tensor(answer, dtype=torch.long)])
        pos = torch.cat([self.prompt_pos, answer_pos])
        n = ids.shape[0]
        bias = torch.zeros(1, 1, n, n)
        logits, _ = self.model(ids[None], pos[None], bias)
        self.tokens_in += n
        p = len(self.prompt)
        return logits[0, [p + i for i in positions]]

    def prefill(self) -> None:
        n = self.prompt.shape[0]
        _, kv = self.model(self.prompt[None], self.prompt_pos[None], torch.zeros(1, 1, n, n))
        self.cache = kv
        self.tokens_in += n

    def sparse_logits(self, positions: Sequence[int], answer_pos: torch.Tensor, mask_id: int, reg_id: int, registers: int) -> torch.Tensor:
        """One sparse step: last step's tokens, this step's masks, the registers (SAMPLING.md 4)."""
        if self.cache is None:
            self.prefill()
        assert self.cache is not None
        prev_idx = [i for i, _ in self.prev]
        ids = [t for _, t in self.prev] + [mask_id] * len(positions) + [reg_id] * registers
        pos = [int(answer_pos[i]) for i in prev_idx] + [int(answer_pos[i]) for i in positions] + \
            [int(p) for p in self.layout.register_positions()[:registers]]
        c = self.cache[0][0].shape[2]
        n, n_prev = len(ids), len(prev_idx)
        bias = torch.zeros(1, 1, n, c + n)
        bias[0, 0, :n_prev, c + n_prev:] = NEG_INF  # last step's tokens see the cache and each other only
        logits, kv = self.model(torch.tensor([ids]), torch.tensor([pos]), bias, self.cache)
        self.tokens_in += n
        self.cache = [(torch.cat([k0, k1[:, :, :n_prev]], dim=2), torch.cat([v0, v1[:, :, :n_prev]], dim=2))
                      for (k0, v0), (k1, v1) in zip(self.cache, kv)]
        return logits[0, n_prev:n_prev + len(positions)]


class Sampler:
    def __init__(self, model: Denoiser, manifest_vocab: dict):
        self.model = model
        self.layout = model.cfg.layout
        self.vocab = manifest_vocab
        sp = manifest_vocab['special']
        self.mask_id, self.reg_id, self.end_id = sp['mask'], sp['reg'], sp['end']
        size = manifest_vocab['size']
        img, txt = manifest_vocab['image'], manifest_vocab['text']
        self.image_allowed = torch.full((size,), False)
        self.image_allowed[img['start']:img['start'] + img['count']] = True
        self.text_allowed = torch.full((size,), False)
        self.text_allowed[txt['start']:txt['start'] + txt['count']] = True
        self.text_allowed[self.end_id] = True

    @torch.no_grad()
    def sample(self, task: str, prompt: Sequence[int], uncond: Sequence[int], opts: SampleOptions) -> SampleResult:
        guided = opts.guidance != 1.0
        branches = [Branch(self.model, self.layout, task, prompt)]
        if guided:
            branches.append(Branch(self.model, self.layout, task, uncond))
        registers = self.model.cfg.registers if opts.registers is None else opts.registers
        sample_rng = Mulberry32((opts.seed ^ 0x5BD1E995) & 0xFFFFFFFF)
        if task == 'answer':
            result = self._sample_text(branches, opts, registers, sample_rng)
        else:
            result = self._sample_image(branches, task, opts, registers, sample_rng)
        result.tokens_in = sum(b.tokens_in for b in branches)
        return result

    def _logits(self, branches: List[Branch], answer: List[int], positions: List[int], answer_pos: torch.Tensor,
                opts: SampleOptions, registers: int) -> torch.Tensor:
        outs = []
        for b in branches:
            if opts.mode == 'dense':
                outs.append(b.dense_logits(answer, self.mask_id, positions, answer_pos))
            else:
                outs.append(b.sparse_logits(positions, answer_pos, self.mask_id, self.reg_id, registers))
        if len(outs) == 1:
            return outs[0]
        cond, unc = outs
        return unc + opts.guidance * (cond - unc)

    def _choose(self, logits: torch.Tensor, allowed: torch.Tensor, opts: SampleOptions, rng: Mulberry32) -> Tuple[List[int], List[float]]:
        """Token and its probability for each row (SAMPLING.md section 5)."""
        logits = logits.double().masked_fill(~allowed, float('-inf'))
        tokens, conf = [], []
        for row in logits:
            if opts.temperature == 0:
                tok = int(torch.argmax(row))  # first maximum: the lowest id wins ties
                probs = torch.softmax(row, dim=0)
            else:
                probs = torch.softmax(row / opts.temperature, dim=0)
                u = rng.next()
                cum = torch.cumsum(probs, dim=0)
                tok = int(torch.searchsorted(cum, torch.tensor(u * float(cum[-1]), dtype=torch.float64), right=True))
                tok = min(tok, len(row) - 1)
                while not bool(allowed[tok]):
                    tok -= 1
            tokens.append(tok)
            conf.append(float(probs[tok]))
        return tokens, conf

    def _image_counts(self, length: int, opts: SampleOptions) -> List[int]:
        """Tokens decoded at each image step (SAMPLING.md section 2); `seeding.py` varies it."""
        return decoded_counts(length, opts.steps, opts.schedule, opts.shift)

    def _image_step_options(self, decoded: int, length: int, opts: SampleOptions) -> SampleOptions:
        """The options of a step that starts with `decoded` of `length` tokens decoded: the
        same at every step here; `seeding.py` varies guidance and temperature by phase."""
        return opts

    def _sample_image(self, branches: List[Branch], task: str, opts: SampleOptions, registers: int, rng: Mulberry32) -> SampleResult:
        L = self.layout.grid ** 2
        answer_pos = torch.from_numpy(self.layout.answer_positions(task, L))
        order = stratified_order(self.layout.grid, Mulberry32(opts.seed))
        answer = [self.mask_id] * L
        result = SampleResult(answer=answer)
        done = 0
        for count in self._image_counts(L, opts):
            positions = order[done:done + count]
            step_opts = self._image_step_options(done, L, opts)
            done += count
            logits = self._logits(branches, answer, positions, answer_pos, step_opts, registers)
            tokens, _ = self._choose(logits, self.image_allowed, step_opts, rng)
            for p, t in zip(positions, tokens):
                answer[p] = t
            for b in branches:
                b.prev = list(zip(positions, tokens))
            result.steps.append(StepRecord(positions=list(positions), tokens=tokens))
        return result

    def _sample_text(self, branches: List[Branch], opts: SampleOptions, registers: int, rng: Mulberry32) -> SampleResult:
        L = self.layout.answer_len
        block = opts.text_block
        if L % block != 0:
            raise ValueError(f'text block {block} does not divide the answer length {L}')
        n_blocks = L // block
        if opts.steps % n_blocks != 0:
            raise ValueError(f'steps ({opts.steps}) must be a multiple of the number of text blocks ({n_blocks})')
        answer_pos = torch.from_numpy(self.layout.answer_positions('answer', L))
        answer = [self.mask_id] * L
        result = SampleResult(answer=answer)
        for blk in range(n_blocks):
            masked = list(range(blk * block, (blk + 1) * block))
            for count in text_block_counts(block, opts.steps // n_blocks):
                logits = self._logits(branches, answer, masked, answer_pos, opts, registers)
                tokens, conf = self._choose(logits, self.text_allowed, opts, rng)
                ranked = sorted(range(len(masked)), key=lambda i: (-conf[i], masked[i]))[:count]
                ranked.sort(key=lambda i: masked[i])
                committed = [(masked[i], tokens[i]) for i in ranked]
                for p, t in committed:
                    answer[p] = t
                for b in branches:
                    b.prev = committed
                result.steps.append(StepRecord(positions=[p for p, _ in committed], tokens=[t for _, t in committed]))
                if self._finish_text(answer):
                    return result
                taken = {p for p, _ in committed}
                masked = [p for p in masked if p not in taken]
        return result

    def _finish_text(self, answer: List[int]) -> bool:
        """The answer is final once its first <end> is decoded and every position before it is
        too; then every later position becomes <end> and sampling stops (SAMPLING.md section 4)."""
        if self.end_id not in answer:
            return False
        end = answer.index(self.end_id)
        if self.mask_id in answer[:end]:
            return False
        for p in range(end + 1, len(answer)):
            answer[p] = self.end_id
        return True


# ---------------------------------------------------------------------------------------
# Commands

def _npm_eval(args: List[str]) -> str:
    out = subprocess.run(['npm', 'run', '--silent', 'eval', '--', *args], cwd=repo_root(), check=True,
                         capture_output=True, text=True)
    return out.stdout


def _load(checkpoint: str, manifest_path: str) -> Tuple[Denoiser, Sampler, dict]:
    model, _ = load_checkpoint(checkpoint)
    with open(manifest_path) as f:
        manifest = json.load(f)
    return model, Sampler(model, manifest['vocab']), manifest.get('sampling', {})


def _options(a: argparse.Namespace, task: str, seed: int, defaults: dict) -> SampleOptions:
    """Command-line values over the manifest's per-task sampling defaults (as the engine does)."""
    d = defaults.get(task, {})
    pick = lambda value, key, fallback: value if value is not None else d.get(key, fallback)  # noqa: E731
    steps = pick(a.text_steps if task == 'answer' else a.steps, 'steps', 16)
    guidance = 1.0 if task == 'answer' else pick(a.guidance, 'guidance', 1.0)
    return SampleOptions(mode=a.sampler, steps=steps, schedule=a.schedule, shift=pick(a.shift, 'shift', 3.0),
                         temperature=pick(a.temperature, 'temperature', 1.0), guidance=guidance, seed=seed,
                         text_block=pick(a.text_block, 'block', 8), registers=pick(a.registers, 'registers', None))


def cmd_eval(a: argparse.Namespace) -> None:
    torch.set_num_threads(a.threads)
    _, sampler, defaults = _load(a.checkpoint, a.manifest)
    tmp = tempfile.mkdtemp(prefix='sample-eval-')
    cases_file = a.cases or os.path.join(tmp, 'cases.jsonl')
    if not a.cases:
        export = ['--export', cases_file, '--n', str(a.n), '--seed', str(a.seed)]
        if a.task:
            export += ['--task', a.task]
        _npm_eval(export)
    outputs_file = a.outputs or os.path.join(tmp, 'outputs.jsonl')
    started = time.time()
    tokens = 0
    with open(cases_file) as f, open(outputs_file, 'w') as out:
        lines = [json.loads(l) for l in f if l.strip()]
        for line in lines:
            res = sampler.sample(line['task'], line['prompt'], line['uncond'], _options(a, line['task'], line['seed'], defaults))
            tokens += res.tokens_in
            out.write(json.dumps({'index': line['index'], 'seed': line['seed'], 'case': line['case'], 'output': res.answer}) + '\n')
    elapsed = time.time() - started
    print(f'sampled {len(lines)} cases with the {a.sampler} sampler in {elapsed:.1f} s '
          f'({elapsed / max(1, len(lines)):.3f} s/case, {tokens / max(1, len(lines)):.0f} tokens/case)', flush=True)
    if a.outputs and not shutil_which('npm'):
        print(f'score with: npm run eval -- --score {outputs_file}')
        return
    score = ['--score', outputs_file] + (['--json', a.json] if a.json else []) + (['--explain'] if a.explain else [])
    print(_npm_eval(score), end='')


def shutil_which(name: str) -> Optional[str]:
    import shutil
    return shutil.which(name)


GOLDEN_CASES = [
    {'task': 't2i', 'prompt': 'a small red circle at the top left and a large blue square in the center'},
    {'task': 't2i', 'prompt': 'two green triangles'},
    {'task': 'edit', 'source': 'a large blue square in the center', 'instruction': 'move the blue square to the left'},
    {'task': 'edit', 'source': 'a small red circle at the top left and a large yellow triangle at the bottom', 'instruction': 'make the red circle purple'},
    {'task': 'answer', 'source': 'a small red circle at the top left and a large blue square in the center', 'question': 'what color is the square?'},
    {'task': 'answer', 'source': 'a large yellow triangle at the bottom right and a small green square at the top', 'question': 'describe the image'},
]


def cmd_golden(a: argparse.Namespace) -> None:
    """Writes the golden traces: exact tokens per step at temperature 0, dense and sparse."""
    _, sampler, defaults = _load(a.checkpoint, a.manifest)
    tmp = tempfile.mkdtemp(prefix='golden-')
    cases_in = os.path.join(tmp, 'cases.jsonl')
    with open(cases_in, 'w') as f:
        f.write('\n'.join(json.dumps(c) for c in GOLDEN_CASES) + '\n')
    cases_out = os.path.join(tmp, 'tokenized.jsonl')
    _npm_eval(['--export', cases_out, '--prompts', cases_in, '--seed', '0'])
    traces = []
    with open(cases_out) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    for line in lines:
        task = line['task']
        # Answers in semi-autoregressive blocks of 8 with every register, and in one block of 32
        # with the manifest's register count (sparse).
        answer_registers = defaults.get('answer', {}).get('registers')
        for mode, block in [(m, b) for b in ((8, 32) if task == 'answer' else (8,)) for m in ('dense', 'sparse')]:
            registers = answer_registers if task == 'answer' and block == 32 and mode == 'sparse' else None
            opts = SampleOptions(mode=mode, steps=a.text_steps if task == 'answer' else a.steps, temperature=0.0,
                                 guidance=1.0 if task == 'answer' else a.guidance, seed=a.seed, text_block=block,
                                 registers=registers)
            res = sampler.sample(task, line['prompt'], line['uncond'], opts)
            traces.append({
                'case': line['case'], 'task': task, 'prompt': line['prompt'], 'uncond': line['uncond'],
                'options': {'mode': mode, 'steps': opts.steps, 'schedule': opts.schedule, 'shift': opts.shift,
                            'temperature': 0, 'guidance': opts.guidance, 'seed': opts.seed, 'text_block': opts.text_block,
                            'registers': opts.registers},
                'steps': [{'positions': s.positions, 'tokens': s.tokens} for s in res.steps],
                'answer': res.answer,
                'tokens_in': res.tokens_in,
            })
    with open(a.out, 'w') as f:
        json.dump({'checkpoint': os.path.basename(a.checkpoint), 'traces': traces}, f)
        f.write('\n')
    print(f'wrote {len(traces)} traces to {a.out}')


def main(argv: Optional[Sequence[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    for name in ('eval', 'golden'):
        s = sub.add_parser(name)
        s.add_argument('--checkpoint', required=True)
        s.add_argument('--manifest', default=os.path.join(repo_root(), 'models', 'shapes-tiny', 'manifest.json'))
        s.add_argument('--steps', type=int, default=None, help='image steps (t2i, edit); default: the manifest\'s')
        s.add_argument('--text-steps', type=int, default=None, help='answer steps (a multiple of the text blocks)')
        s.add_argument('--guidance', type=float, default=None)
        s.add_argument('--seed', type=int, default=0)
    e = sub.choices['eval']
    e.add_argument('--sampler', choices=('dense', 'sparse'), default='sparse')
    e.add_argument('--n', type=int, default=60, help='cases per task')
    e.add_argument('--task', choices=('t2i', 'edit', 'answer'))
    e.add_argument('--schedule', choices=('shift', 'cosine'), default='shift')
    e.add_argument('--shift', type=float, default=None)
    e.add_argument('--temperature', type=float, default=None)
    e.add_argument('--text-block', type=int, default=None)
    e.add_argument('--registers', type=int, default=None, help="registers fed per sparse step (default: the task's sampling.registers in the manifest, else all; 0 = ablation)")
    e.add_argument('--threads', type=int, default=2)
    e.add_argument('--cases', help='tokenized cases from `npm run eval -- --export` (skips the export)')
    e.add_argument('--outputs', help='where to write the outputs (default: a temp file)')
    e.add_argument('--json')
    e.add_argument('--explain', action='store_true', help='print each wrong case: what was asked, what the detector saw or the answer')
    g = sub.choices['golden']
    g.set_defaults(guidance=2.0, steps=16, text_steps=16)
    g.add_argument('--out', default=os.path.join(repo_root(), 'test', 'fixtures', 'golden-traces.json'))
    a = p.parse_args(argv)
    if a.cmd == 'eval':
        cmd_eval(a)
    else:
        cmd_golden(a)


if __name__ == '__main__':
    main()
