/**
 * Scores results against resolved cases: images through the detector (GenEval-style,
 * nothing missing and nothing extra), answers by exact match, a caption answer compared as
 * a scene. Scores are tallied per task and category; a task's overall score is the mean of
 * its category scores, as GenEval reports.
 */
import type { RgbImage } from '../../functions/core/image.ts';
import { joinWords, splitWords } from '../../functions/tokenizers/words.ts';
import { CATEGORIES, TASKS, type ResolvedCase, type Task } from './cases.ts';
import { detect, detectionMatches, detectionText } from './detector.ts';
import { sceneOfCaption } from '../../functions/world/language.ts';
import { satisfies, type Scene, type SceneSpec } from '../../functions/world/scene.ts';

/** Whether a generated image shows what the spec asks for. */
export function judgeImage(image: RgbImage, expected: SceneSpec): boolean {
  return detectionMatches(detect(image), expected);
}

/** `judgeImage`, and what the detector saw (for explaining a wrong image). */
export function judgeImageSeen(image: RgbImage, expected: SceneSpec): { correct: boolean; seen: string } {
  const detection = detect(image);
  return { correct: detectionMatches(detection, expected), seen: detectionText(detection) };
}

/** Whether a caption describes exactly the scene: every object fully stated, none missing or extra. */
export function captionDescribes(caption: string, scene: Scene): boolean {
  const stated = sceneOfCaption(caption);
  return stated !== null && satisfies(scene, stated);
}

/** Whether an answer is right for an answer case. */
export function judgeAnswer(answer: string, c: Extract<ResolvedCase, { task: 'answer' }>): boolean {
  if (c.question.kind === 'describe') return captionDescribes(answer, c.source);
  return joinWords(splitWords(answer)) === c.expected;
}

export interface ScoreRow {
  readonly task: Task;
  readonly category: string;
  readonly n: number;
  readonly score: number;
}

/** Counts correct results per task and category. */
export class Tally {
  private readonly counts = new Map<string, { n: number; correct: number }>();

  add(task: Task, category: string, correct: boolean): void {
    const key = `${task}/${category}`;
    const entry = this.counts.get(key) ?? { n: 0, correct: 0 };
    entry.n++;
    if (correct) entry.correct++;
    this.counts.set(key, entry);
  }

  /** Rows per category in the world's order, then an `overall` row per task. */
  rows(): ScoreRow[] {
    const out: ScoreRow[] = [];
    for (const task of TASKS) {
      const cats: ScoreRow[] = [];
      for (const category of CATEGORIES[task]) {
        const e = this.counts.get(`${task}/${category}`);
        if (e) cats.push({ task, category, n: e.n, score: e.correct / e.n });
      }
      if (cats.length === 0) continue;
      out.push(...cats);
      const n = cats.reduce((a, r) => a + r.n, 0);
      out.push({ task, category: 'overall', n, score: cats.reduce((a, r) => a + r.score, 0) / cats.length });
    }
    return out;
  }
}

/** The rows as an aligned text table. */
export function formatTable(rows: readonly ScoreRow[]): string {
  const lines = [['task', 'category', 'n', 'score']];
  for (const r of rows) lines.push([r.task, r.category, String(r.n), r.score.toFixed(2)]);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...lines.map((l) => (l[i] as string).length)));
  return lines
    .map((l) => l.map((cell, i) => (i >= 2 ? cell.padStart(widths[i] as number) : cell.padEnd(widths[i] as number))).join('  '))
    .join('\n');
}
