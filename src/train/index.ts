/**
 * Training: the trainer (seeded data order, AdamW, cosine warm-up, layer-wise learning-rate decay,
 * clipping, micro-batches, safetensors checkpoints), the weight-decay rule and timm's parameter groups.
 * @module
 */
export * from './adamw.js';
export * from './lrSchedule.js';
export * from './weightDecay.js';
export * from './layerDecay.js';
export * from './trainer.js';
