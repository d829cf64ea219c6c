"""Export a training checkpoint to the package's denoiser.onnx (docs/design.md section 3).

    /usr/bin/python3 models/train/export.py --checkpoint models/train/runs/main/last.pt \
        [--out models/shapes-tiny/denoiser.onnx] [--no-package]

The 2D position parameterization is folded into one table first, so the graph takes
position ids exactly as the contract says. Opset 17; dynamic batch, sequence and cache
length (including 0). Checks onnx.checker and the size, compares the folded model with the
trained one in PyTorch (and with onnxruntime when Python has it), writes model-info.json
next to the checkpoint, then runs `npm run package -- --model-info …` so manifest.json gains
the file's sha256/size, the architecture, the position layout and the sampling defaults.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from typing import List

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import repo_root  # noqa: E402
from model import NEG_INF, Denoiser, load_checkpoint  # noqa: E402

OPSET = 17
MAX_BYTES = 20 * 1024 * 1024

# Per-task sampling defaults written to the manifest (the engine's defaults; requests may
# override; meaning of each field: `samplingSchema` in functions/core/manifest.ts). Images:
# temperature sampling with classifier-free guidance (greedy decoding in a fixed order
# draws blank images); answers: greedy semi-autoregressive text blocks. Starting values,
# to be tuned with the reference sampler.
# Temperature 0.5 over 1.0: at step 4500 of the main run, t2i 0.08 vs 0.03 and edits 0.11
# vs 0.06 (36 cases each, seed 11); greedy decoding in a fixed order tends to draw nothing.
# Answers feed no registers at sparse steps: on the e9a weights, 200 cases each of seeds 11,
# 0 and 5 scored 0.90 / 0.90 / 0.87 with the 8 registers and 0.90 / 0.91 / 0.87 without,
# for 13 % fewer tokens; images keep all of them (removing them costs sparse t2i 0.08).
# Text to image takes 40 steps: on the f10a weights (200 cases each of seeds 11 / 0) sparse
# scored 0.52 / 0.55 at 20 steps, 0.59 at 32, 0.61 / 0.65 at 40 and 0.62 at 64 (dense 0.54,
# 0.62 at 40, 0.66 at 64): fewer tokens per step early leave fewer objects decided in
# parallel. Guidance 2 and temperature 0.5 stay best at 40 steps (1.5-2.5 and 0.4-1.0 tried).
# Edits gain nothing from more steps (0.90 at 20, 0.91 at 40).
# Text to image draws 8 candidates and keeps the one the model scores best
# (functions/sampler/rerank.ts); every second one samples without guidance at temperature 1
# (`variants`), which varies the images far more (models/train/README.md, "Varied candidates").
# Each candidate is then described by the model itself and checked against the prompt
# (`verify`); drawing stops once 2 agree (models/train/README.md, "Checking candidates").
SAMPLING_DEFAULTS = {
    't2i': {'steps': 40, 'shift': 3.0, 'temperature': 0.5, 'guidance': 2.0, 'candidates': 16,
            'variants': [{}, {'guidance': 1.0, 'temperature': 1.0}],
            'verify': {'question': 'describe the image', 'language': 'shapes-world', 'stopAfter': 2, 'minExplained': -5.0, 'minRegionFit': -100.0, 'rankBy': 'explained'}},
    'edit': {'steps': 20, 'shift': 3.0, 'temperature': 0.5, 'guidance': 1.5},
    'answer': {'steps': 8, 'shift': 1.0, 'temperature': 0.0, 'guidance': 1.0, 'block': 32, 'registers': 0},
}


class OnnxDenoiser(nn.Module):
    """Flat inputs/outputs with the contract's names: (ids, positions, bias, k0, v0, k1, v1, …)."""

    def __init__(self, model: Denoiser):
        super().__init__()
        self.model = model

    def forward(self, input_ids, position_ids, attn_bias, *past_flat):
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(len(past_flat) // 2)]
        logits, new = self.model(input_ids, position_ids, attn_bias, past)
        out: List[torch.Tensor] = [logits]
        for k, v in new:
            out += [k, v]
        return tuple(out)


def io_names(layers: int):
    inputs = ['input_ids', 'position_ids', 'attn_bias']
    outputs = ['logits']
    for i in range(layers):
        inputs += [f'past_key_{i}', f'past_value_{i}']
        outputs += [f'new_key_{i}', f'new_value_{i}']
    return inputs, outputs


def example_inputs(model: Denoiser, batch: int, n: int, c: int, seed: int = 0):
    cfg = model.cfg
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, cfg.vocab_size, (batch, n), generator=g)
    pos = torch.randint(0, cfg.layout.size, (batch, n), generator=g)
    bias = torch.where(torch.rand(batch, 1, n, c + n, generator=g) < 0.2, torch.tensor(NEG_INF), torch.tensor(0.0))
    past = []
    for _ in range(cfg.n_layers):
        past += [torch.randn(batch, cfg.n_heads, c, cfg.head_dim, generator=g), torch.randn(batch, cfg.n_heads, c, cfg.head_dim, generator=g)]
    return (ids, pos, bias, *past)


def model_info(model: Denoiser, ckpt: dict, file: str) -> dict:
    cfg = model.cfg
    return {
        'model': {
            'file': file, 'dModel': cfg.d_model, 'layers': cfg.n_layers, 'heads': cfg.n_heads, 'headDim': cfg.head_dim,
            'registers': cfg.registers, 'maskValue': NEG_INF, 'positions': cfg.layout.to_json(),
        },
        'sampling': SAMPLING_DEFAULTS,
        'training': {'objWeight': ckpt.get('args', {}).get('obj_weight', 1.0), 'step': ckpt.get('step'), 'minutes': round(ckpt.get('elapsed', 0) / 60, 1), 'tokens': ckpt.get('tokens'),
                     'savedAt': ckpt.get('saved_at'), 'seed': ckpt.get('args', {}).get('seed')},
    }


def export_onnx(checkpoint: str, out: str, package: bool = True) -> dict:
    import onnx
    model, ckpt = load_checkpoint(checkpoint)
    folded = model.fold().eval()
    with torch.no_grad():
        for c in (0, 5):
            x = example_inputs(model, 2, 7, c)
            past = [(x[3 + 2 * i], x[4 + 2 * i]) for i in range(model.cfg.n_layers)]
            a, ka = model(x[0], x[1], x[2], past)
            b, kb = folded(x[0], x[1], x[2], past)
            diff = float((a - b).abs().max())
            if diff > 1e-4:
                raise RuntimeError(f'folded positions change the logits by {diff} (C={c})')
    inputs, outputs = io_names(model.cfg.n_layers)
    dyn = {'input_ids': {0: 'batch', 1: 'seq'}, 'position_ids': {0: 'batch', 1: 'seq'},
           'attn_bias': {0: 'batch', 2: 'seq', 3: 'total'}, 'logits': {0: 'batch', 1: 'seq'}}
    for name in inputs[3:]:
        dyn[name] = {0: 'batch', 2: 'past'}
    for name in outputs[1:]:
        dyn[name] = {0: 'batch', 2: 'seq'}
    os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
    tmp = out + '.tmp'
    torch.onnx.export(OnnxDenoiser(folded), example_inputs(model, 2, 7, 5), tmp, input_names=inputs, output_names=outputs,
                      dynamic_axes=dyn, opset_version=OPSET, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(tmp))
    size = os.path.getsize(tmp)
    if size > MAX_BYTES:
        raise RuntimeError(f'{out} is {size} bytes, over the {MAX_BYTES} limit')
    os.replace(tmp, out)
    print(f'wrote {out}: {size / 1e6:.2f} MB, opset {OPSET}, {len(inputs)} inputs, {len(outputs)} outputs')
    try:
        import onnxruntime as ort  # not in Debian; the TypeScript parity test covers ORT
        sess = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
        for c in (0, 5):
            x = example_inputs(model, 2, 7, c, seed=1)
            ref = OnnxDenoiser(folded)(*x)
            got = sess.run(None, {n: t.numpy() for n, t in zip(inputs, x)})
            print(f'onnxruntime vs torch, C={c}: max |diff| {max(float(np.abs(g - r.detach().numpy()).max()) for g, r in zip(got, ref)):.2e}')
    except ImportError:
        pass
    info = model_info(model, ckpt, os.path.basename(out))
    info_path = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), 'model-info.json')
    with open(info_path, 'w') as f:
        json.dump(info, f, indent=2)
    if package:
        subprocess.run(['npm', 'run', 'package', '--', '--dir', os.path.dirname(out) or '.', '--model-info', info_path],
                       check=True, cwd=repo_root())
    return info


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint', default='models/train/runs/main/last.pt')
    p.add_argument('--out', default='models/shapes-tiny/denoiser.onnx')
    p.add_argument('--no-package', action='store_true',
                   help='write the graph only: no manifest, no test fixtures')
    args = p.parse_args()
    os.chdir(repo_root())
    if args.no_package:
        export_onnx(args.checkpoint, args.out, package=False)
    else:
        export_package(args.checkpoint, args.out)


def export_package(checkpoint: str, out: str) -> None:
    """Exports into the package and regenerates the test fixtures that describe it.

    The checkpoint may be rewritten by a running training job: one frozen copy makes the
    graph, the manifest and the fixtures (PyTorch/ORT parity, golden traces), so they
    always describe the same weights. The shipped package's fixtures are the tests' own
    (test/fixtures/); a package anywhere else gets its fixtures in its own `fixtures/`
    folder, so a trial export never replaces what the tests check.
    """
    frozen = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), 'exported.pt')
    shutil.copyfile(checkpoint, frozen)
    export_onnx(frozen, out, package=True)
    package_dir = os.path.abspath(os.path.dirname(out) or '.')
    shipped = os.path.realpath(package_dir) == os.path.realpath(os.path.join(repo_root(), 'models', 'shapes-tiny'))
    fixtures = os.path.join(repo_root(), 'test', 'fixtures') if shipped else os.path.join(package_dir, 'fixtures')
    os.makedirs(fixtures, exist_ok=True)
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([sys.executable, os.path.join(here, 'parity.py'), '--checkpoint', frozen, '--package', package_dir,
                    '--out', os.path.join(fixtures, 'denoiser-parity.json')], check=True, cwd=repo_root())
    subprocess.run([sys.executable, os.path.join(here, 'sample.py'), 'golden', '--checkpoint', frozen,
                    '--manifest', os.path.join(package_dir, 'manifest.json'),
                    '--out', os.path.join(fixtures, 'golden-traces.json')], check=True, cwd=repo_root())


if __name__ == '__main__':
    main()
