import type { DataConfig } from '../data/dataConfig.js';
import type { Backbone } from '../models/backbone.js';
import type { CheckpointInfo } from './checkpointDir.js';

export type { CheckpointInfo };

/**
 * Node: rebuild the model of a checkpoint folder (`config.json` + `model.safetensors`, as `finetune`
 * writes it), with its class names and data config in `model.pretrainedCfg`.
 */
export async function loadCheckpoint(dir: string): Promise<{ model: Backbone; info: CheckpointInfo }> {
  const m = await import('./checkpointDir.js');
  return m.loadCheckpointDir(dir);
}

/** Node: write a checkpoint folder (`model.safetensors` with timm's keys, `config.json`). */
export async function saveCheckpoint(
  dir: string,
  model: Backbone,
  info: { model?: string; classNames?: string[] | null; dataConfig: DataConfig },
): Promise<void> {
  const m = await import('./checkpointDir.js');
  m.saveCheckpointDir(dir, model, info);
}
