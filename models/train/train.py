"""Train shapes-tiny: one set of weights for text-to-image, edits and answers, with both
objectives on every step (docs/design.md section 1):

- dense MDM loss: mask ratio t ~ U(0,1), full bidirectional attention over prompt+answer,
  cross-entropy on the masked answer tokens, averaged per example (the 1/t weighting of
  LLaDA, normalised by the number of masked tokens instead of t*L);
- step-causal loss: the clean answer tokens in M random cache-order blocks, the masked ones
  in N blocks each carrying its own copy of the R registers, attention by the block rule.

    /usr/bin/python3 models/train/train.py --name main --minutes 100 [--resume] [--device cuda]
    npm run train -- --name main --minutes 100          (data -> train -> export -> package)

Checkpoints (with optimizer and generator state) go to models/train/runs/NAME/last.pt every
--ckpt-minutes; the log is runs/NAME/log.txt (+ metrics.jsonl).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import TASKS, PositionLayout, TaskData, load_data, log_line, repo_root  # noqa: E402
from model import Denoiser, ModelConfig, n_params, step_causal_bias  # noqa: E402


@dataclass
class Batch:
    input_ids: torch.Tensor  # [B,N]
    position_ids: torch.Tensor  # [B,N]
    attn_bias: torch.Tensor  # [B,1,N,N]
    targets: torch.Tensor  # [B,N], -1 where no loss
    weights: torch.Tensor  # [B,N], 0 where no loss
    step_causal: torch.Tensor  # [B] bool


class BatchMaker:
    """Turns data rows into training sequences: real tokens only, batch-padded with <pad>."""

    def __init__(self, meta: dict, layout: PositionLayout, args):
        sp = meta['vocab']['special']
        self.pad, self.mask, self.reg = sp['pad'], sp['mask'], sp['reg']
        self.background = meta['vocab']['image']['start']  # code 0: white background
        self.grid = meta['image']['grid']
        self.layout = layout
        self.R = layout.registers
        self.obj_weight = args.obj_weight
        self.prompt_drop = args.prompt_drop
        self.max_clean_blocks = args.max_clean_blocks
        self.max_mask_blocks = args.max_mask_blocks
        self.high_t_frac = args.high_t_frac
        self.high_t_min = args.high_t_min

    def example(self, task: str, prompt: np.ndarray, plen: int, answer: np.ndarray, step_causal: bool,
                rng: np.random.Generator, t: Optional[float] = None):
        prompt = prompt[:plen].astype(np.int64)
        # Prompt dropout for classifier-free guidance: the text goes, the task token (and the
        # source image + <sep> of an edit) stay. Answers are never guided, so never dropped.
        if task != 'answer' and rng.random() < self.prompt_drop:
            prompt = prompt[:1] if task == 't2i' else prompt[:2 + self.grid * self.grid]
        ppos = self.layout.prompt_positions(task, len(prompt))
        answer = answer.astype(np.int64)
        L = len(answer)
        apos = self.layout.answer_positions(task, L)
        if t is None:
            # Some examples near t = 1, where the sampler's first steps are and where only the
            # prompt can say what to draw; otherwise t ~ U(0, 1).
            if self.high_t_frac > 0 and rng.random() < self.high_t_frac:
                t = self.high_t_min + (1 - self.high_t_min) * rng.random()
            else:
                t = rng.random()
        m = int(min(L, max(1, round(t * L))))
        order = rng.permutation(L)
        masked = order[:m]
        clean = order[m:]
        ans_in = answer.copy()
        ans_in[masked] = self.mask
        target = np.full(L, -1, np.int64)
        target[masked] = answer[masked]
        w = np.zeros(L, np.float32)
        w[masked] = 1.0
        if task != 'answer' and self.obj_weight != 1.0:
            w[masked] = np.where(answer[masked] != self.background, self.obj_weight, 1.0)
        ids = [prompt, ans_in]
        pos = [ppos, apos]
        tgt = [np.full(len(prompt), -1, np.int64), target]
        wts = [np.zeros(len(prompt), np.float32), w]
        if not step_causal:
            blocks = [np.zeros(len(prompt) + L, np.int64)]
            n_clean = 0
        else:
            n_clean = int(rng.integers(1, self.max_clean_blocks + 1))
            ab = np.zeros(L, np.int64)
            ab[clean] = rng.integers(1, n_clean + 1, size=len(clean))
            # Masked blocks of a realistic step size (a few to a few dozen tokens), at most
            # max_mask_blocks of them (each costs R register tokens).
            size = int(rng.integers(4, 49))
            n_mask = int(min(self.max_mask_blocks, m, math.ceil(m / size)))
            for k, chunk in enumerate(np.array_split(masked, n_mask)):
                ab[chunk] = n_clean + 1 + k
            blocks = [np.zeros(len(prompt), np.int64), ab]
            rpos = self.layout.register_positions()
            for k in range(n_mask):
                ids.append(np.full(self.R, self.reg, np.int64))
                pos.append(rpos)
                tgt.append(np.full(self.R, -1, np.int64))
                wts.append(np.zeros(self.R, np.float32))
                blocks.append(np.full(self.R, n_clean + 1 + k, np.int64))
        return (np.concatenate(ids), np.concatenate(pos), np.concatenate(tgt), np.concatenate(wts),
                np.concatenate(blocks), n_clean)

    def batch(self, task: str, data: TaskData, idx: np.ndarray, sc_flags: np.ndarray, rng: np.random.Generator,
              ts: Optional[np.ndarray] = None, device='cpu') -> Batch:
        exs = [self.example(task, data.prompt[i], int(data.prompt_lens[i]), data.answer[i], bool(sc), rng,
                            None if ts is None else float(ts[k]))
               for k, (i, sc) in enumerate(zip(idx, sc_flags))]
        n = max(len(e[0]) for e in exs)
        B = len(exs)
        ids = np.full((B, n), self.pad, np.int64)
        pos = np.zeros((B, n), np.int64)
        tgt = np.full((B, n), -1, np.int64)
        wts = np.zeros((B, n), np.float32)
        blk = np.zeros((B, n), np.int64)
        valid = np.zeros((B, n), bool)
        n_clean = np.zeros(B, np.int64)
        for b, (i_, p_, t_, w_, k_, m_) in enumerate(exs):
            k = len(i_)
            ids[b, :k], pos[b, :k], tgt[b, :k], wts[b, :k], blk[b, :k] = i_, p_, t_, w_, k_
            valid[b, :k] = True
            n_clean[b] = m_
        blocks = torch.from_numpy(blk)
        bias = step_causal_bias(blocks, torch.from_numpy(n_clean), torch.from_numpy(valid))
        return Batch(
            input_ids=torch.from_numpy(ids).to(device), position_ids=torch.from_numpy(pos).to(device),
            attn_bias=bias.to(device), targets=torch.from_numpy(tgt).to(device), weights=torch.from_numpy(wts).to(device),
            step_causal=torch.from_numpy(np.asarray(sc_flags, bool)).to(device),
        )


def per_example_loss(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """[B]: weighted mean cross-entropy over each example's masked tokens."""
    ce = F.cross_entropy(logits.transpose(1, 2), batch.targets.clamp(min=0), reduction='none')
    w = batch.weights
    return (ce * w).sum(1) / w.sum(1).clamp(min=1e-6)


def lr_at(step: int, args, trained_seconds: float = 0.0, warm_from: int = 0) -> float:
    """Linear warmup, then constant or cosine to min_lr_frac. The cosine runs over
    --total-steps, or over --horizon-minutes of training time when that is set (for a run
    that must end at a wall-clock time on a machine whose speed varies; not bit-reproducible)."""
    if step - warm_from < args.warmup:
        return args.lr * (step - warm_from + 1) / args.warmup
    if args.schedule == 'const':
        return args.lr
    if args.horizon_minutes:
        start = args.horizon_start_minutes * 60
        p = min(1.0, max(0.0, trained_seconds - start) / max(1.0, args.horizon_minutes * 60 - start))
    else:
        p = min(1.0, (step - args.warmup) / max(1, args.total_steps - args.warmup))
    return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))


@torch.no_grad()
def evaluate(model: Denoiser, maker: BatchMaker, heldout: Dict[str, TaskData], n: int, device) -> dict:
    """Held-out CE (unweighted) and accuracy on masked tokens, fixed masks, both modes."""
    model.eval()
    out = {}
    saved_w, saved_drop = maker.obj_weight, maker.prompt_drop
    maker.obj_weight, maker.prompt_drop = 1.0, 0.0
    for task, data in heldout.items():
        for mode in ('dense', 'sc'):
            rng = np.random.default_rng(1234)
            idx = np.arange(n)
            ts = np.linspace(0.05, 0.95, n)
            ce_sum = tok = 0.0
            obj_hit = obj_n = 0.0
            for s in range(0, n, 16):
                b = maker.batch(task, data, idx[s:s + 16], np.full(len(idx[s:s + 16]), mode == 'sc'), rng, ts[s:s + 16], device)
                logits, _ = model(b.input_ids, b.position_ids, b.attn_bias)
                m = b.targets >= 0
                ce = F.cross_entropy(logits[m], b.targets[m], reduction='sum')
                ce_sum += float(ce)
                tok += float(m.sum())
                pred = logits.argmax(-1)
                obj = m & (b.targets != maker.background) if task != 'answer' else m & (b.targets != 3)
                obj_hit += float((pred[obj] == b.targets[obj]).sum())
                obj_n += float(obj.sum())
            out[f'{task}/{mode}/ce'] = ce_sum / max(tok, 1)
            out[f'{task}/{mode}/obj_acc'] = obj_hit / max(obj_n, 1)
        if task == 'answer':
            continue
        # Prompt following: everything masked (t = 1), CE on the object tokens with the prompt
        # and with it dropped (as for guidance); the gap is what the prompt tells the model.
        obj_ce = {}
        for drop in (0.0, 1.0):
            maker.prompt_drop = drop
            rng = np.random.default_rng(4321)
            ce_sum = n_obj = 0.0
            for s in range(0, n, 16):
                ids = np.arange(n)[s:s + 16]
                b = maker.batch(task, data, ids, np.zeros(len(ids), bool), rng, np.ones(len(ids)), device)
                logits, _ = model(b.input_ids, b.position_ids, b.attn_bias)
                obj = (b.targets >= 0) & (b.targets != maker.background)
                ce_sum += float(F.cross_entropy(logits[obj], b.targets[obj], reduction='sum'))
                n_obj += float(obj.sum())
            obj_ce[drop] = ce_sum / max(n_obj, 1)
        maker.prompt_drop = 0.0
        out[f'{task}/t1/obj_ce'] = obj_ce[0.0]
        out[f'{task}/t1/prompt_gain'] = obj_ce[1.0] - obj_ce[0.0]
    maker.obj_weight, maker.prompt_drop = saved_w, saved_drop
    model.train()
    return out


def save_checkpoint(path: str, model, opt, step: int, elapsed: float, rng, cfg: ModelConfig, args, tokens: int) -> None:
    tmp = path + '.tmp'
    torch.save({
        'model': model.state_dict(), 'optimizer': opt.state_dict(), 'step': step, 'elapsed': elapsed,
        'tokens': tokens, 'rng': rng.bit_generator.state, 'torch_rng': torch.get_rng_state(),
        'config': cfg.to_dict(), 'args': vars(args), 'saved_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
    }, tmp)
    os.replace(tmp, path)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--name', default='main')
    p.add_argument('--data', default='models/train/data/d300k')
    p.add_argument('--data-n', type=int, default=300000, help='examples per task when --data must be generated')
    p.add_argument('--data-seed', type=int, default=2)
    p.add_argument('--heldout', default='models/train/data/heldout')
    p.add_argument('--minutes', type=float, default=60.0, help='training wall-clock budget for this sitting')
    p.add_argument('--max-steps', type=int, default=0)
    p.add_argument('--device', default='cpu')
    p.add_argument('--resume', action='store_true')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=0, help='torch intra-op threads (0 = default)')
    # model
    p.add_argument('--d-model', type=int, default=256)
    p.add_argument('--layers', type=int, default=4)
    p.add_argument('--heads', type=int, default=4)
    p.add_argument('--head-dim', type=int, default=64)
    p.add_argument('--ff-mult', type=int, default=4)
    p.add_argument('--registers', type=int, default=8)
    p.add_argument('--pos-mode', choices=['2d', '1d'], default='2d')
    # objective
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--task-weights', default='t2i:0.5,edit:0.25,answer:0.25')
    p.add_argument('--sc-frac', type=float, default=0.5, help='fraction of each batch trained step-causally')
    p.add_argument('--obj-weight', type=float, default=1.0, help='loss weight of non-background image tokens')
    p.add_argument('--prompt-drop', type=float, default=0.1)
    p.add_argument('--high-t-frac', type=float, default=0.0, help='fraction of examples with t ~ U(--high-t-min, 1)')
    p.add_argument('--high-t-min', type=float, default=0.85)
    p.add_argument('--max-clean-blocks', type=int, default=16)
    p.add_argument('--max-mask-blocks', type=int, default=6)
    # optimisation
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--min-lr-frac', type=float, default=0.1)
    p.add_argument('--warmup', type=int, default=200)
    p.add_argument('--schedule', choices=['cosine', 'const'], default='cosine')
    p.add_argument('--total-steps', type=int, default=10000, help='cosine horizon in steps')
    p.add_argument('--horizon-minutes', type=float, default=0.0, help='cosine horizon in minutes of training time (overrides --total-steps)')
    p.add_argument('--horizon-start-minutes', type=float, default=0.0,
                   help='trained minutes at which the --horizon-minutes cosine starts (a new cosine for a resumed run)')
    p.add_argument('--weight-decay', type=float, default=0.01)
    p.add_argument('--clip', type=float, default=1.0)
    # bookkeeping
    p.add_argument('--ckpt-minutes', type=float, default=5.0)
    p.add_argument('--log-every', type=int, default=20)
    p.add_argument('--eval-minutes', type=float, default=10.0)
    p.add_argument('--eval-n', type=int, default=48)
    p.add_argument('--export', action=argparse.BooleanOptionalAction, default=False,
                   help='after training: export denoiser.onnx and run npm run package (npm run train passes --export)')
    p.add_argument('--out-dir', default='models/shapes-tiny')
    return p.parse_args(argv)


def ensure_data(path: str, n: int, seed: int) -> None:
    if os.path.exists(os.path.join(path, 'meta.json')):
        return
    log_line(None, f'generating training data in {path} (n={n}, seed={seed})')
    subprocess.run(['npm', 'run', 'data', '--', '--out', path, '--n', str(n), '--seed', str(seed)], check=True, cwd=repo_root())


def main(argv=None) -> None:
    args = parse_args(argv)
    os.chdir(repo_root())
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    run_dir = os.path.join('models/train/runs', args.name)
    os.makedirs(run_dir, exist_ok=True)
    log_path = os.path.join(run_dir, 'log.txt')
    ckpt_path = os.path.join(run_dir, 'last.pt')
    ensure_data(args.data, args.data_n, args.data_seed)
    ensure_data(args.heldout, 2000, 999)
    meta, data = load_data(args.data)
    _, heldout = load_data(args.heldout)
    weights = dict((kv.split(':')[0], float(kv.split(':')[1])) for kv in args.task_weights.split(','))
    heldout = {k: TaskData(v.prompt[:args.eval_n], v.answer[:args.eval_n], v.prompt_lens[:args.eval_n])
               for k, v in heldout.items() if weights.get(k, 0) > 0}

    resume = args.resume and os.path.exists(ckpt_path)
    ckpt = torch.load(ckpt_path, map_location='cpu') if resume else None
    if ckpt is not None:
        cfg = ModelConfig(**ckpt['config'])
    else:
        cfg = ModelConfig(
            vocab_size=meta['vocab']['size'], d_model=args.d_model, n_layers=args.layers, n_heads=args.heads,
            head_dim=args.head_dim, d_ff=args.ff_mult * args.d_model, registers=args.registers, grid=meta['image']['grid'],
            text_len=32, answer_len=meta['tasks']['answer']['answer_len'], pos_mode=args.pos_mode,
            image_start=meta['vocab']['image']['start'], image_count=meta['vocab']['image']['count'],
        )
    torch.manual_seed(args.seed)
    model = Denoiser(cfg).to(device)
    decay = [p for n_, p in model.named_parameters() if p.dim() >= 2 and 'pos.' not in n_ and 'tok.' not in n_]
    no_decay = [p for n_, p in model.named_parameters() if not (p.dim() >= 2 and 'pos.' not in n_ and 'tok.' not in n_)]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': args.weight_decay}, {'params': no_decay, 'weight_decay': 0.0}],
                            lr=args.lr, betas=(0.9, 0.98), eps=1e-8)
    rng = np.random.default_rng(args.seed)
    step, elapsed_before, tokens = 0, 0.0, 0
    warm_from = 0  # the step the optimizer started at: its warmup counts from there
    if ckpt is not None:
        model.load_state_dict(ckpt['model'])
        # A weights-only checkpoint (models/train/checkpoints/, committed so training can go
        # on in a later sitting) starts a fresh optimizer and generators.
        if 'optimizer' in ckpt:
            opt.load_state_dict(ckpt['optimizer'])
            rng.bit_generator.state = ckpt['rng']
            torch.set_rng_state(ckpt['torch_rng'])
        step, elapsed_before, tokens = ckpt['step'], ckpt['elapsed'], ckpt.get('tokens', 0)
        if 'optimizer' not in ckpt:
            warm_from = step
        log_line(log_path, f'resumed from {ckpt_path} at step {step} ({elapsed_before / 60:.1f} min trained)')
    log_line(log_path, f'config {json.dumps(cfg.to_dict())} params {n_params(model)} args {json.dumps(vars(args))}')

    maker = BatchMaker(meta, cfg.layout, args)
    task_names = [t for t in TASKS if weights.get(t, 0) > 0]
    probs = np.array([weights[t] for t in task_names])
    probs = probs / probs.sum()

    model.train()
    t0 = time.time()
    last_ckpt = last_eval = t0
    stats: Dict[str, List[float]] = {}
    metrics_path = os.path.join(run_dir, 'metrics.jsonl')
    budget = args.minutes * 60
    n_sc = int(round(args.batch * args.sc_frac))
    while True:
        now = time.time()
        if now - t0 >= budget or (args.max_steps and step >= args.max_steps):
            break
        task = task_names[int(rng.choice(len(task_names), p=probs))]
        d = data[task]
        idx = rng.integers(0, len(d.answer), size=args.batch)
        sc_flags = np.arange(args.batch) >= args.batch - n_sc
        batch = maker.batch(task, d, idx, sc_flags, rng, device=device)
        lr = lr_at(step, args, elapsed_before + now - t0, warm_from)
        for g in opt.param_groups:
            g['lr'] = lr
        logits, _ = model(batch.input_ids, batch.position_ids, batch.attn_bias)
        per_ex = per_example_loss(logits, batch)
        loss = per_ex.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        step += 1
        tokens += int(batch.input_ids.numel())
        sc = batch.step_causal
        if (~sc).any():
            stats.setdefault(f'{task}/dense', []).append(float(per_ex[~sc].mean()))
        if sc.any():
            stats.setdefault(f'{task}/sc', []).append(float(per_ex[sc].mean()))
        stats.setdefault('gnorm', []).append(float(gnorm))
        if step % args.log_every == 0:
            el = elapsed_before + time.time() - t0
            summary = {k: float(np.mean(v)) for k, v in stats.items()}
            log_line(log_path, f'step {step} lr {lr:.2e} {el / 60:.1f}min {(time.time() - t0) / max(1, step - (ckpt["step"] if ckpt else 0)):.3f}s/step '
                     + ' '.join(f'{k} {v:.4f}' for k, v in sorted(summary.items())))
            with open(metrics_path, 'a') as f:
                f.write(json.dumps({'step': step, 'elapsed': el, 'lr': lr, 'tokens': tokens, **summary}) + '\n')
            stats = {}
        if time.time() - last_eval >= args.eval_minutes * 60:
            ev = evaluate(model, maker, heldout, args.eval_n, device)
            log_line(log_path, f'eval step {step} ' + ' '.join(f'{k} {v:.4f}' for k, v in sorted(ev.items())))
            with open(metrics_path, 'a') as f:
                f.write(json.dumps({'step': step, 'elapsed': elapsed_before + time.time() - t0, 'eval': ev}) + '\n')
            last_eval = time.time()
        if time.time() - last_ckpt >= args.ckpt_minutes * 60:
            save_checkpoint(ckpt_path, model, opt, step, elapsed_before + time.time() - t0, rng, cfg, args, tokens)
            last_ckpt = time.time()
    save_checkpoint(ckpt_path, model, opt, step, elapsed_before + time.time() - t0, rng, cfg, args, tokens)
    ev = evaluate(model, maker, heldout, args.eval_n, device)
    log_line(log_path, f'eval step {step} ' + ' '.join(f'{k} {v:.4f}' for k, v in sorted(ev.items())))
    with open(metrics_path, 'a') as f:
        f.write(json.dumps({'step': step, 'elapsed': elapsed_before + time.time() - t0, 'eval': ev, 'final': True}) + '\n')
    log_line(log_path, f'done: step {step}, checkpoint {ckpt_path}')
    if args.export:
        from export import export_package
        export_package(ckpt_path, os.path.join(args.out_dir, 'denoiser.onnx'))


if __name__ == '__main__':
    main()
