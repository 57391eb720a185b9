import * as tf from '@tensorflow/tfjs';
import { VisBackbonesError } from '../errors.js';
// the backward pass of every training step frees what it has used (same gradients, lower peak)
import '../backends/freeingTape.js';

/**
 * How a parameter is laid out internally versus in the reference (PyTorch) state dict.
 * Internal layouts are chosen for TF.js speed (NHWC, dense kernels `[in, out]`); the state dict
 * always uses the reference's layout so checkpoints move both ways unchanged.
 */
export interface ParamLayout {
  /** Short name, for error messages. */
  readonly name: string;
  /** The reference (PyTorch) shape for a given internal shape. */
  torchShape(internalShape: number[]): number[];
  /** Internal tensor -> reference layout (returns a new tensor). */
  toTorch(t: tf.Tensor): tf.Tensor;
  /** Reference layout -> internal tensor (returns a new tensor). */
  fromTorch(t: tf.Tensor, internalShape: number[]): tf.Tensor;
}

/** Same layout in both worlds (norm weights, biases, tables, embeddings). */
export const IDENTITY: ParamLayout = {
  name: 'identity',
  torchShape: (s) => s.slice(),
  toTorch: (t) => t.clone(),
  fromTorch: (t, s) => t.reshape(s),
};

/** `nn.Linear.weight`: internal `[in, out]`, reference `[out, in]`. */
export const LINEAR: ParamLayout = {
  name: 'linear',
  torchShape: ([i, o]) => [o, i],
  toTorch: (t) => t.transpose([1, 0]),
  fromTorch: (t) => t.transpose([1, 0]),
};

/** `nn.Conv2d.weight` (groups = 1): internal `[kh, kw, in, out]`, reference `[out, in, kh, kw]`. */
export const CONV: ParamLayout = {
  name: 'conv',
  torchShape: ([kh, kw, i, o]) => [o, i, kh, kw],
  toTorch: (t) => t.transpose([3, 2, 0, 1]),
  fromTorch: (t) => t.transpose([2, 3, 1, 0]),
};

/** Depthwise `nn.Conv2d.weight` (groups = C): internal `[kh, kw, C, 1]`, reference `[C, 1, kh, kw]`. */
export const DEPTHWISE: ParamLayout = {
  name: 'depthwise',
  torchShape: ([kh, kw, c, m]) => [c * m, 1, kh, kw],
  toTorch: (t) => t.transpose([2, 3, 0, 1]),
  fromTorch: (t) => t.transpose([2, 3, 0, 1]),
};

/**
 * A patchify convolution (kernel = stride) kept as a dense kernel: internal `[kh*kw*in, out]` in
 * (row, column, channel) order, reference `[out, in, kh, kw]`.
 */
export function patchLayout(kh: number, kw: number): ParamLayout {
  return {
    name: `patch${kh}x${kw}`,
    torchShape: ([k, o]) => [o, k / (kh * kw), kh, kw],
    toTorch: (t) => {
      const [k, o] = t.shape;
      return tf.tidy(() => t.reshape([kh, kw, k / (kh * kw), o]).transpose([3, 2, 0, 1]));
    },
    fromTorch: (t) => {
      const [o, i] = t.shape;
      return tf.tidy(() => t.transpose([2, 3, 1, 0]).reshape([kh * kw * i, o]));
    },
  };
}

/** A learnable (or frozen) tensor owned by a {@link Module}. */
export class Parameter {
  constructor(
    /** The variable holding the value in the internal layout. The Layers adapter may rebind it. */
    public variable: tf.Variable,
    public readonly layout: ParamLayout,
    /** Whether `trainableVariables()` reports it (freezing flips this). */
    public trainable: boolean,
  ) {}
  /** The current value (internal layout). */
  get value(): tf.Variable {
    return this.variable;
  }
  /** Shape in the reference (PyTorch) layout. */
  get torchShape(): number[] {
    return this.layout.torchShape(this.variable.shape);
  }
}

/** Options that every `forward` accepts. */
export interface ForwardOptions {
  /** Training mode: drop path and dropout active. Default false (eval). */
  training?: boolean;
}

/** Options of {@link Module.loadStateDict}. */
export interface LoadStateDictOptions {
  /** Throw on missing, unexpected or mis-shaped keys (default true). */
  strict?: boolean;
}

/** What {@link Module.loadStateDict} did. */
export interface LoadStateDictResult {
  loaded: string[];
  missing: string[];
  unexpected: string[];
  mismatched: string[];
}

const INT64 = new WeakSet<tf.Tensor>();
/**
 * Mark an int32 tensor as holding a PyTorch int64 value (`num_batches_tracked`, a persistent
 * `relative_position_index`): `writeSafetensors` writes it as I64, as the reference stores it.
 */
export function markInt64<T extends tf.Tensor>(t: T): T {
  INT64.add(t);
  return t;
}
/** Whether {@link markInt64} marked `t`. */
export function isInt64(t: tf.Tensor): boolean {
  return INT64.has(t);
}

/** Options of a buffer registered with {@link Module.addBuffer}. */
export interface BufferOptions {
  /**
   * In the state dict (PyTorch's `persistent=True`): saved and loaded with the parameters, never
   * trainable, not counted as parameters. Default false: a constant derived from the config.
   */
  persistent?: boolean;
  /** An integer buffer that the reference keeps as int64 (written back as I64). */
  int64?: boolean;
}

/** A persistent buffer: a non-trainable variable in the state dict. */
export interface PersistentBuffer {
  variable: tf.Variable;
  int64: boolean;
}

let variableCounter = 0;
/** A process-wide unique variable name, so two models never collide in tfjs's registry. */
export function uniqueVariableName(base: string): string {
  variableCounter += 1;
  return `vb_${base.replace(/[^A-Za-z0-9_.\-/]/g, '_')}_${variableCounter}`;
}

/**
 * The base of every primitive and model: owns `tf.Variable`s and child modules (as PyTorch's
 * `nn.Module`), runs eagerly, and names its state with the reference's state-dict keys.
 */
/** The key under which {@link Module.adoptModule} keeps an adopted module (no child is named ''). */
const INLINE = '';

export abstract class Module {
  private readonly _params = new Map<string, Parameter>();
  private readonly _modules = new Map<string, Module>();
  private readonly _buffers = new Map<string, tf.Tensor>();
  private readonly _persistent = new Map<string, PersistentBuffer>();
  /** Constructor arguments, so the Layers adapter can rebuild the module (`getConfig`). */
  config: Record<string, unknown> = {};

  /** Run the module. */
  abstract forward(x: unknown, opts?: ForwardOptions): unknown;

  /**
   * Register a parameter under `name` (a state-dict key segment). `value` is in the internal
   * layout and is kept (not copied) by the new variable.
   */
  protected addParameter(name: string, value: tf.Tensor, layout: ParamLayout = IDENTITY, trainable = true): Parameter {
    if (this.hasName(name)) {
      throw new VisBackbonesError(`duplicate parameter name '${name}' in ${this.constructor.name}`);
    }
    const v = tf.variable(value, trainable, uniqueVariableName(name));
    value.dispose();
    const p = new Parameter(v, layout, trainable);
    this._params.set(name, p);
    return p;
  }

  /**
   * Register a buffer. Non-persistent (default): a constant derived from the config (relative-position
   * indices, attention masks, coordinate tables), not in the state dict, disposed with the module.
   * Persistent (`{ persistent: true }`): state that is saved but never trained (BatchNorm's running
   * statistics), kept in a non-trainable variable that is returned.
   */
  protected addBuffer<T extends tf.Tensor>(name: string, t: T, opts?: { persistent?: false; int64?: boolean }): T;
  protected addBuffer(name: string, t: tf.Tensor, opts: BufferOptions & { persistent: true }): tf.Variable;
  protected addBuffer(name: string, t: tf.Tensor, opts: BufferOptions = {}): tf.Tensor {
    if (opts.persistent) {
      if (this.hasName(name)) {
        throw new VisBackbonesError(`duplicate buffer name '${name}' in ${this.constructor.name}`);
      }
      const int64 = opts.int64 ?? false;
      if (int64 && t.dtype !== 'int32') throw new VisBackbonesError(`int64 buffer '${name}' must be an int32 tensor, got ${t.dtype}`);
      const v = tf.variable(t, false, uniqueVariableName(name));
      t.dispose();
      this._persistent.set(name, { variable: v, int64 });
      return v;
    }
    const old = this._buffers.get(name);
    if (old && old !== t) old.dispose();
    this._buffers.set(name, tf.keep(t));
    return t;
  }

  /** Register a child module under `name`. */
  protected addModule<M extends Module>(name: string, m: M): M {
    if (name === '' || this.hasName(name)) {
      throw new VisBackbonesError(`duplicate or empty child name '${name}' in ${this.constructor.name}`);
    }
    this._modules.set(name, m);
    return m;
  }

  /**
   * Take `m` in as part of this module: its parameters, buffers and children are listed as this module's
   * own, with no name segment of their own (as the attributes a PyTorch subclass inherits: a task that
   * wraps a model and keeps the model's keys unprefixed). `m` is disposed with this module. One per module.
   */
  protected adoptModule<M extends Module>(m: M): M {
    if (this._modules.has(INLINE)) throw new VisBackbonesError(`${this.constructor.name} already adopted a module`);
    const taken = [...m._params.keys(), ...m._persistent.keys(), ...m.children().map(([n]) => n)].filter((n) => this.hasName(n));
    if (taken.length)
      throw new VisBackbonesError(`${this.constructor.name} cannot adopt ${m.constructor.name}: names taken: ${taken.join(', ')}`);
    this._modules.set(INLINE, m);
    return m;
  }

  /** Whether `name` is a parameter, persistent buffer or child of this module (adopted ones included). */
  private hasName(name: string): boolean {
    const inline = this._modules.get(INLINE);
    return this._params.has(name) || this._persistent.has(name) || this._modules.has(name) || (inline?.hasName(name) ?? false);
  }

  /** Replace a registered child (disposing the old one), e.g. when the classifier is reset. */
  protected replaceModule<M extends Module>(name: string, m: M): M {
    const old = this._modules.get(name);
    if (old && old !== m) old.dispose();
    this._modules.set(name, m);
    return m;
  }

  /** Direct children, in registration order (an adopted module's children in its place). */
  children(): [string, Module][] {
    return [...this._modules].flatMap(([n, m]): [string, Module][] => (n === INLINE ? m.children() : [[n, m]]));
  }

  /** A child by dotted path (`'layers.0.blocks.1.attn'`), as PyTorch's `get_submodule`. */
  getSubmodule(path: string): Module {
    if (path === '') return this;
    let m: Module = this;
    for (const part of path.split('.')) {
      const next = m.children().find(([n]) => n === part)?.[1];
      if (!next) throw new VisBackbonesError(`no submodule '${path}' (stopped at '${part}') in ${this.constructor.name}`);
      m = next;
    }
    return m;
  }

  /** {@link getSubmodule} that returns null instead of throwing. */
  findSubmodule(path: string): Module | null {
    try {
      return this.getSubmodule(path);
    } catch {
      return null;
    }
  }

  /** Every parameter with its full dotted name. */
  namedParameters(prefix = ''): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [n, p] of this._params) out.push([prefix + n, p]);
    for (const [n, m] of this._modules) out.push(...m.namedParameters(n === INLINE ? prefix : `${prefix}${n}.`));
    return out;
  }

  /** Every persistent buffer with its full dotted name. */
  namedBuffers(prefix = ''): [string, PersistentBuffer][] {
    const out: [string, PersistentBuffer][] = [];
    for (const [n, b] of this._persistent) out.push([prefix + n, b]);
    for (const [n, m] of this._modules) out.push(...m.namedBuffers(n === INLINE ? prefix : `${prefix}${n}.`));
    return out;
  }

  /** Every module (this one first) with its dotted name. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix.replace(/\.$/, ''), this]];
    for (const [n, m] of this._modules) out.push(...(n === INLINE ? m.namedModules(prefix).slice(1) : m.namedModules(`${prefix}${n}.`)));
    return out;
  }

  /** Number of parameter values. */
  numParams(): number {
    return this.namedParameters().reduce((s, [, p]) => s + p.variable.size, 0);
  }

  /**
   * The state dict in the reference's naming and layouts (Linear `[out, in]`, Conv
   * `[out, in/groups, kh, kw]`). The tensors are new: the caller disposes them.
   */
  stateDict(): Record<string, tf.Tensor> {
    const sd: Record<string, tf.Tensor> = {};
    for (const [n, p] of this.namedParameters()) sd[n] = tf.tidy(() => p.layout.toTorch(p.variable));
    for (const [n, b] of this.namedBuffers()) {
      const t = b.variable.clone();
      sd[n] = b.int64 ? markInt64(t) : t;
    }
    return sd;
  }

  /**
   * Load a state dict in the reference's naming and layouts. Strict by default: one error lists
   * every missing, unexpected and wrongly shaped key. Nothing is assigned unless all checks pass
   * (strict) or for the keys that match (non-strict).
   */
  loadStateDict(sd: Record<string, tf.Tensor>, opts: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = opts.strict ?? true;
    const params = new Map(this.namedParameters());
    const buffers = new Map(this.namedBuffers());
    const res: LoadStateDictResult = { loaded: [], missing: [], unexpected: [], mismatched: [] };
    const mismatchDetail: string[] = [];
    for (const k of Object.keys(sd)) {
      const p = params.get(k);
      const b = buffers.get(k);
      if (!p && !b) {
        res.unexpected.push(k);
        continue;
      }
      const want = p ? p.torchShape : b!.variable.shape;
      const got = sd[k].shape;
      if (want.length !== got.length || want.some((d, i) => d !== got[i])) {
        res.mismatched.push(k);
        mismatchDetail.push(`${k}: checkpoint [${got.join(', ')}] vs model [${want.join(', ')}]`);
      }
    }
    for (const k of params.keys()) if (!(k in sd)) res.missing.push(k);
    // integer buffers (num_batches_tracked, ...) are checked when present, never required
    for (const [k, b] of buffers) if (!(k in sd) && b.variable.dtype === 'float32') res.missing.push(k);
    if (strict && (res.missing.length || res.unexpected.length || res.mismatched.length)) {
      const lines = ['state dict does not match the model (strict loading):'];
      if (res.missing.length) lines.push(`  missing keys (${res.missing.length}): ${res.missing.join(', ')}`);
      if (res.unexpected.length) lines.push(`  unexpected keys (${res.unexpected.length}): ${res.unexpected.join(', ')}`);
      if (mismatchDetail.length) lines.push(`  shape mismatches (${mismatchDetail.length}): ${mismatchDetail.join('; ')}`);
      throw new StateDictError(lines.join('\n'), res);
    }
    const bad = new Set(res.mismatched);
    for (const k of Object.keys(sd)) {
      const b = buffers.get(k);
      if (b && !bad.has(k)) {
        tf.tidy(() => b.variable.assign(sd[k].dtype === b.variable.dtype ? sd[k] : sd[k].cast(b.variable.dtype)));
        res.loaded.push(k);
        continue;
      }
      const p = params.get(k);
      if (!p || bad.has(k)) continue;
      tf.tidy(() => {
        const t = sd[k].dtype === 'float32' ? sd[k] : sd[k].toFloat();
        p.variable.assign(p.layout.fromTorch(t, p.variable.shape));
      });
      res.loaded.push(k);
    }
    return res;
  }

  /** The variables that an optimizer should update (frozen ones excluded). */
  trainableVariables(): tf.Variable[] {
    return this.namedParameters()
      .filter(([, p]) => p.trainable)
      .map(([, p]) => p.variable);
  }

  /** Freeze (or unfreeze) every parameter of this module and its children. */
  setTrainable(trainable: boolean): this {
    for (const [, p] of this.namedParameters()) {
      p.trainable = trainable;
      (p.variable as { trainable: boolean }).trainable = trainable;
    }
    return this;
  }

  /** True once {@link dispose} ran: the variables are gone and the module cannot run. */
  get isDisposed(): boolean {
    return this._disposed;
  }
  private _disposed = false;

  /** Release every variable. */
  dispose(): void {
    this._disposed = true;
    for (const p of this._params.values()) p.variable.dispose();
    for (const b of this._buffers.values()) b.dispose();
    this._buffers.clear();
    for (const b of this._persistent.values()) b.variable.dispose();
    this._persistent.clear();
    for (const m of this._modules.values()) m.dispose();
  }
}

/** An ordered list of modules named `0`, `1`, ... (PyTorch's `nn.ModuleList` / `nn.Sequential`). */
export class ModuleList<M extends Module = Module> extends Module {
  readonly items: M[] = [];
  constructor(items: M[] = []) {
    super();
    for (const m of items) this.push(m);
  }
  /** Append a module (named by its index). */
  push(m: M): M {
    this.addModule(String(this.items.length), m);
    this.items.push(m);
    return m;
  }
  get length(): number {
    return this.items.length;
  }
  /** Sequential application. */
  forward(x: tf.Tensor, opts?: ForwardOptions): tf.Tensor {
    let y = x;
    for (const m of this.items) y = m.forward(y, opts) as tf.Tensor;
    return y;
  }
}

/** Raised by strict {@link Module.loadStateDict}; carries the lists. */
export class StateDictError extends VisBackbonesError {
  constructor(
    message: string,
    public readonly result: LoadStateDictResult,
  ) {
    super(message);
    this.name = 'StateDictError';
  }
}
