/**
 * Masked-image-modeling pretraining: mask generators, targets (pixels, HOG, teacher features), the losses
 * of SimMIM / MixMIM / FCMAE / EVA / MILAN, and the wrappers that turn a backbone into a pretraining model
 * (trained with the trainer of src/train).
 * @module
 */
export * from './rng.js';
export { repeatMask } from './maskUtils.js';
export * from './simmimMask.js';
export * from './randomMasking.js';
export * from './fcmaeMask.js';
export * from './mixmimMask.js';
export * from './blockMask.js';
export * from './semanticMasking.js';
export * from './patchify.js';
export { stopGradient } from './gradientSafe.js';
export * from './hog.js';
export * from './simmimLoss.js';
export * from './mixmimLoss.js';
export * from './fcmaeLoss.js';
export * from './featureLosses.js';
export * from './sincosPosEmbed.js';
export * from './pixelShuffle.js';
export * from './gatherTokens.js';
export * from './xavierInit.js';
export * from './swinEncoder.js';
export * from './maskedEncoder.js';
export * from './swinMaskedEncoder.js';
export * from './vitMaskedEncoder.js';
export * from './promptingDecoderBlock.js';
export * from './simmim.js';
export * from './mixmim.js';
export * from './fastmim.js';
export * from './milan.js';
export * from './fcmae.js';
export * from './bevt.js';
export * from './clipTeacher.js';
export * from './evaPretrain.js';
