"""Text-to-image sampling variations that SAMPLING.md does not have, for studying how the
first steps seed objects: per-phase guidance and temperature, and explicit token counts for
the first steps. Everything else is the reference sampler (`sample.py`); the outputs are
scored through `npm run eval -- --score`.

    /usr/bin/python3 models/train/seeding.py --checkpoint models/train/checkpoints/main.pt \
        --cases /tmp/t2i200.jsonl [--first-counts 1,1,1,1] [--early-frac 0.1 --early-guidance 1.5] \
        [--early-temperature 0.2] [--guidance 2] [--temperature 0.5] [--steps 20] [--shift 3]

`--cases` comes from `npm run eval -- --export FILE --task t2i --n 200 --seed 11`.
`--first-counts 1,1,1,1` decodes one token at each of the first four steps and spreads the
rest over the remaining steps by the same schedule (the total stays `--steps`). "Early"
steps are those that start while fewer than `--early-frac` of the tokens are decoded.
`--trace N` prints case N's grid after chosen steps instead ('#' object, '.' background).
"""
import argparse
import collections
import dataclasses
import json
import os
import sys
import tempfile
from typing import List

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import repo_root  # noqa: E402
from sample import SampleOptions, SampleResult, Sampler, _load, _npm_eval, decoded_counts  # noqa: E402


def step_counts(length: int, steps: int, shift: float, first: List[int]) -> List[int]:
    if not first:
        return decoded_counts(length, steps, 'shift', shift)
    if len(first) >= steps or sum(first) >= length:
        raise SystemExit('--first-counts must leave tokens and steps for the schedule')
    return first + decoded_counts(length - sum(first), steps - len(first), 'shift', shift)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint', required=True)
    p.add_argument('--manifest', default=os.path.join(repo_root(), 'models/shapes-tiny/manifest.json'))
    p.add_argument('--cases', required=True)
    p.add_argument('--sampler', choices=['sparse', 'dense'], default='sparse')
    p.add_argument('--steps', type=int, default=20)
    p.add_argument('--shift', type=float, default=3.0)
    p.add_argument('--temperature', type=float, default=0.5)
    p.add_argument('--guidance', type=float, default=2.0)
    p.add_argument('--first-counts', default='')
    p.add_argument('--early-frac', type=float, default=0.0)
    p.add_argument('--early-guidance', type=float, default=None)
    p.add_argument('--early-temperature', type=float, default=None)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--trace', type=int, default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model, reference, _ = _load(a.checkpoint, a.manifest)
    try:
        first = [int(x) for x in a.first_counts.split(',') if x.strip()]
    except ValueError:
        raise SystemExit(f'--first-counts {a.first_counts!r}: expected whole numbers separated by commas, e.g. 1,1,1,1')
    if any(c < 1 for c in first):
        raise SystemExit(f'--first-counts {a.first_counts!r}: every step decodes at least one token')

    class Seeding(Sampler):
        def _image_counts(self, length: int, opts: SampleOptions) -> List[int]:
            return step_counts(length, opts.steps, opts.shift, first)

        def _image_step_options(self, decoded: int, length: int, opts: SampleOptions) -> SampleOptions:
            if decoded >= a.early_frac * length:
                return opts
            return dataclasses.replace(
                opts,
                guidance=opts.guidance if a.early_guidance is None else a.early_guidance,
                temperature=opts.temperature if a.early_temperature is None else a.early_temperature)

    sampler = Seeding(model, reference.vocab)
    step_counts(sampler.layout.grid ** 2, a.steps, a.shift, first)  # a bad --first-counts fails before sampling
    if not os.path.isfile(a.cases):
        raise SystemExit(f'{a.cases}: no such file (make it with npm run eval -- --export FILE --task t2i)')
    with open(a.cases) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    if not lines or any(l.get('task') != 't2i' for l in lines):
        raise SystemExit(f'{a.cases}: expected t2i cases from npm run eval -- --export (one JSON object a line)')
    if a.trace is not None and not 0 <= a.trace < len(lines):
        raise SystemExit(f'--trace {a.trace}: {a.cases} has cases 0..{len(lines) - 1}')

    def run(line) -> SampleResult:
        opts = SampleOptions(mode=a.sampler, steps=a.steps, schedule='shift', shift=a.shift,
                             temperature=a.temperature, guidance=a.guidance, seed=line['seed'])
        return sampler.sample('t2i', line['prompt'], line['uncond'], opts)

    if a.trace is not None:
        line = lines[a.trace]
        res = run(line)
        background = collections.Counter(res.answer).most_common(1)[0][0]
        print(f"case {a.trace}: {line['case']['prompt']!r}")
        grid = [' '] * len(res.answer)
        for k, st in enumerate(res.steps, 1):
            for pos, tok in zip(st.positions, st.tokens):
                grid[pos] = '.' if tok == background else '#'
            if k <= 4 or k == len(res.steps):
                print(f'after step {k} ({len(st.positions)} tokens)')
                side = sampler.layout.grid
                for r in range(side):
                    print('  |' + ''.join(grid[r * side:(r + 1) * side]) + '|')
        return

    out = os.path.join(tempfile.mkdtemp(prefix='seeding-'), 'outputs.jsonl')
    with open(out, 'w') as f:
        for line in lines:
            res = run(line)
            f.write(json.dumps({'index': line['index'], 'seed': line['seed'], 'case': line['case'], 'output': res.answer}) + '\n')
    print(_npm_eval(['--score', out]), end='')


if __name__ == '__main__':
    main()
