import * as tf from '@tensorflow/tfjs';
import { check, VisBackbonesError } from '../errors.js';
import type { Module, Parameter } from '../layers/module.js';
import { Backbone } from '../models/backbone.js';
import { getFamilyFactory } from '../models/registry.js';

/** How to rebuild a module from a saved LayersModel: a factory name and its config. */
export interface ModuleSpec {
  /** `'family:<name>'` for backbones (e.g. `'family:swinv2'`) or a name given to {@link registerModuleFactory}. */
  factory: string;
  config: Record<string, unknown>;
}

const factories = new Map<string, (config: Record<string, unknown>) => Module>();

/** Make a module kind rebuildable by {@link ModuleLayer.fromConfig} (backbones need nothing: their family is known). */
export function registerModuleFactory(name: string, factory: (config: Record<string, unknown>) => Module): void {
  factories.set(name, factory);
}

/** The spec that rebuilds `module` (backbones: their family and config). */
export function specOf(module: Module): ModuleSpec {
  if (module instanceof Backbone && module.family) return { factory: `family:${module.family}`, config: { ...module.config } };
  const name = (module.config.factory as string | undefined) ?? module.constructor.name;
  return { factory: name, config: { ...module.config } };
}

function buildFromSpec(spec: ModuleSpec): Module {
  if (spec.factory.startsWith('family:')) return getFamilyFactory(spec.factory.slice(7))(spec.config);
  const f = factories.get(spec.factory);
  if (!f) throw new VisBackbonesError(`no module factory '${spec.factory}' is registered (registerModuleFactory)`);
  return f(spec.config);
}

/** Constructor arguments of {@link ModuleLayer}. */
export interface ModuleLayerArgs {
  module?: Module;
  spec?: ModuleSpec;
  name?: string;
  trainable?: boolean;
}

/**
 * A `tf.layers.Layer` that runs a {@link Module}: its parameters become the layer's weights (named
 * by their state-dict keys, in the module's internal layouts), so `LayersModel.summary()`, `fit()`,
 * `save()` and `tf.loadLayersModel` work. The module's variables are rebound to the layer's.
 */
export class ModuleLayer extends tf.layers.Layer {
  static className = 'VisBackbonesModuleLayer';
  readonly module: Module;
  readonly spec: ModuleSpec;

  constructor(args: ModuleLayerArgs) {
    super({ name: args.name, trainable: args.trainable ?? true });
    check(args.module || args.spec, 'ModuleLayer needs a module or a spec');
    this.module = args.module ?? buildFromSpec(args.spec!);
    this.spec = args.spec ?? specOf(this.module);
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const params: [string, Parameter][] = this.module.namedParameters();
    for (const [name, p] of params) {
      const lw = this.addWeight(name, p.variable.shape, 'float32', tf.initializers.zeros(), undefined, p.trainable);
      lw.write(p.variable);
      const old = p.variable;
      p.variable = lw.read() as tf.Variable;
      if (old !== p.variable) old.dispose();
    }
    super.build(inputShape);
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const probeShape = shape.map((d) => (d == null ? 1 : d)) as number[];
    const probe = tf.zeros(probeShape);
    const y = this.module.forward(probe);
    const ys = (Array.isArray(y) ? y : [y]) as tf.Tensor[];
    const out = ys.map((t) => [null, ...t.shape.slice(1)]);
    tf.dispose([probe, ...ys]);
    return out.length === 1 ? (out[0] as tf.Shape) : (out as tf.Shape[]);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[] {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return this.module.forward(x, { training: Boolean(kwargs.training) }) as tf.Tensor | tf.Tensor[];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), spec: this.spec as unknown as tf.serialization.ConfigDictValue };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const { spec, name, trainable } = config as unknown as { spec: ModuleSpec; name?: string; trainable?: boolean };
    return new (cls as unknown as new (a: ModuleLayerArgs) => T)({ spec, name, trainable });
  }
}
tf.serialization.registerClass(ModuleLayer);

/** Options of {@link toLayersModel}. */
export interface ToLayersModelOptions {
  /** Name of the module's layer. */
  name?: string;
  /**
   * `'logits'` (default): the module's output as it is; a classifier's are logits, so train with
   * {@link softmaxCrossEntropyFromLogits} as the loss (Keras' `from_logits=True`). `'softmax'` appends a
   * softmax layer: the output are probabilities, for `compile({ loss: 'categoricalCrossentropy' })`.
   */
  output?: 'logits' | 'softmax';
}

/**
 * Categorical cross-entropy of one-hot (or soft) targets and logits, averaged over the batch: the loss for
 * `compile({ optimizer, loss: softmaxCrossEntropyFromLogits })` on a model whose output are logits.
 * (The string loss `'categoricalCrossentropy'` expects probabilities: on logits it trains on the wrong loss.)
 */
export function softmaxCrossEntropyFromLogits(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Scalar {
  return tf.losses.softmaxCrossEntropy(yTrue, yPred) as tf.Scalar;
}

/**
 * Wrap a module as a one-layer `tf.LayersModel` with input shape `inputShape` (without the batch
 * axis, NHWC for images). The module's variables become the model's weights. The third argument is
 * the layer's name or {@link ToLayersModelOptions}.
 */
export function toLayersModel(module: Module, inputShape: number[], opts?: string | ToLayersModelOptions): tf.LayersModel {
  const o: ToLayersModelOptions = typeof opts === 'string' ? { name: opts } : (opts ?? {});
  const mode = o.output ?? 'logits';
  check(
    mode === 'logits' || mode === 'softmax',
    () => `toLayersModel: output must be 'logits' or 'softmax', got ${JSON.stringify(o.output)}`,
  );
  const input = tf.input({ shape: inputShape });
  const layer = new ModuleLayer({ module, name: o.name });
  let output = layer.apply(input) as tf.SymbolicTensor | tf.SymbolicTensor[];
  if (mode === 'softmax') {
    check(!Array.isArray(output) && output.shape.length === 2, () => {
      const shapes = (Array.isArray(output) ? output : [output]).map((t) => `[${t.shape.join(', ')}]`).join(', ');
      return `toLayersModel: output 'softmax' needs a single [B, classes] output (a classifier), got ${shapes}`;
    });
    output = tf.layers.softmax().apply(output) as tf.SymbolicTensor;
  }
  return tf.model({ inputs: input, outputs: output });
}
