import * as tf from '@tensorflow/tfjs';
import type { Module } from '../../layers/module.js';

/**
 * timm's ConvNeXt `checkpoint_filter_fn`: maps the official ConvNeXt / ConvNeXt-V2 checkpoint names to
 * timm's (`downsample_layers.0` -> `stem`, `downsample_layers.i` -> `stages.i.downsample`,
 * `stages.i.j` -> `stages.i.blocks.j`, `dwconv` -> `conv_dw`, `pwconv1/2` -> `mlp.fc1/2`,
 * `grn.gamma/beta` `(1, 1, 1, C)` -> `mlp.grn.weight/bias` `(C,)`, `head` -> `head.fc`, `norm` -> `head.norm`).
 * timm checkpoints pass unchanged. In both cases an MLP weight stored as a Linear `[out, in]` for a
 * 1x1-conv model (or the reverse) is reshaped to the model's layout. Returns the tensors it created.
 */
export function convnextCheckpointFilter(
  sd: Record<string, tf.Tensor>,
  model: Module,
): { sd: Record<string, tf.Tensor>; created: tf.Tensor[] } {
  const created: tf.Tensor[] = [];
  const shapes = new Map(model.namedParameters().map(([n, p]) => [n, p.torchShape]));
  const timmLayout = 'head.norm.weight' in sd || 'norm_pre.weight' in sd || Object.keys(sd).some((k) => k.startsWith('stem.'));
  const out: Record<string, tf.Tensor> = {};
  for (const [key, value] of Object.entries(sd)) {
    let k = key;
    let v = value;
    if (!timmLayout) {
      k = k.split('downsample_layers.0.').join('stem.');
      k = k.replace(/stages\.(\d+)\.(\d+)/, 'stages.$1.blocks.$2');
      k = k.replace(/downsample_layers\.(\d+)\.(\d+)/, 'stages.$1.downsample.$2');
      k = k.split('dwconv').join('conv_dw');
      k = k.split('pwconv').join('mlp.fc');
      if (k.includes('grn')) {
        k = k.split('grn.beta').join('mlp.grn.bias').split('grn.gamma').join('mlp.grn.weight');
        v = v.reshape([v.shape[v.rank - 1]]);
        created.push(v);
      }
      k = k.split('head.').join('head.fc.');
      if (k.startsWith('norm.')) k = k.replace('norm', 'head.norm');
    }
    // Linear [out, in] <-> 1x1 conv [out, in, 1, 1] for the block MLP
    const want = shapes.get(k);
    if (want && /\.mlp\.fc[12]\.weight$/.test(k) && want.length !== v.rank && want.reduce((a, b) => a * b, 1) === v.size) {
      v = v.reshape(want);
      created.push(v);
    }
    out[k] = v;
  }
  return { sd: out, created };
}
