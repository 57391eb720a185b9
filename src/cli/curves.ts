import { deflateSync } from 'node:zlib';
import { imageGrid } from '../viz/imageGrid.js';
import { lineChart } from '../viz/lineChart.js';
import { encodePng } from '../viz/png.js';
import type { RgbImage } from '../viz/imageGrid.js';

/** One epoch of a fine-tuning run, as `finetune` records it in `<out>/trainer.json`. */
export interface EpochRecord {
  epoch: number;
  /** Mean training loss over the epoch's steps. */
  trainLoss: number;
  /** Validation top-1 accuracy in [0, 1] (null without a validation split). */
  valAccuracy: number | null;
  /** Global steps done at the end of the epoch. */
  steps: number;
}

/** Encode an {@link RgbImage} row as a (deflated) PNG. */
export function chartsPng(charts: RgbImage[]): Uint8Array {
  const g = imageGrid([charts], { pad: 4 });
  return encodePng(g.pixels, g.width, g.height, { channels: 3, deflate: (b) => deflateSync(b) });
}

/** The learning curve of a fine-tuning run: train loss and validation accuracy per epoch, side by side. */
export function learningCurvePng(history: EpochRecord[], title = ''): Uint8Array {
  const loss = lineChart([{ name: 'train loss', points: history.map((h) => [h.epoch, h.trainLoss]) }], {
    title: `${title}train loss`.trim(),
    xLabel: 'epoch',
  });
  const withVal = history.filter((h) => h.valAccuracy !== null);
  const charts = [loss];
  if (withVal.length)
    charts.push(
      lineChart(
        [{ name: 'val accuracy %', points: withVal.map((h) => [h.epoch, 100 * (h.valAccuracy as number)]), color: [0.2, 0.63, 0.17] }],
        {
          title: `${title}val accuracy %`.trim(),
          xLabel: 'epoch',
          yRange: [0, 100],
        },
      ),
    );
  return chartsPng(charts);
}

/** Pretraining curves: training loss per step and validation loss at each evaluation. */
export function pretrainCurvePng(train: [number, number][], val: [number, number][], title = ''): Uint8Array {
  const series = [{ name: 'train loss', points: train }];
  if (val.length) series.push({ name: 'val loss', points: val });
  return chartsPng([lineChart(series, { title: `${title}pretraining loss`.trim(), xLabel: 'step', width: 480 })]);
}
