import * as tf from '@tensorflow/tfjs';

/**
 * A backward pass that frees memory as it goes. tfjs 4.22's `engine.gradients` (behind `tf.grads`,
 * `tf.variableGrads` and `optimizer.minimize`) keeps every tensor a gradient function saved and every
 * intermediate gradient until the whole backward pass ends, so a training step's peak is all saved
 * activations plus the gradients of all of them at once. This replacement walks the same tape in the
 * same order with the same gradient functions (the gradients are bit-identical) but releases
 *   - a node's saved tensors as soon as its gradient is computed (nothing else reads them),
 *   - the gradient of a node's outputs once that node has used it,
 *   - a partial gradient once it has been added into the running sum, and the zeros tfjs makes for
 *     outputs outside the backward graph,
 * so the peak becomes the saved activations at the start of the backward pass, shrinking as it runs:
 * PyTorch's autograd frees in the same way. Nested gradients (a `tf.grads` inside the function being
 * differentiated, higher-order gradients) run tfjs's own code unchanged.
 *
 * Installed on import of the package; {@link setFreeingTape}(false) puts tfjs's method back.
 */

interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: Array<tf.Tensor | null>) => Record<string, () => tf.Tensor>;
}

interface EngineInternals {
  state: { gradientDepth: number; activeTape: TapeNode[] | null };
  gradients(f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor, allowNoGradients?: boolean): { value: tf.Tensor; grads: tf.Tensor[] };
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
  tidy<T extends tf.TensorContainer>(nameOrFn: string | (() => T), fn?: () => T): T;
}

/**
 * The nodes of `tape` on a path from one of `xs` to `y`, their inputs pruned to those that depend on `xs`
 * (what tfjs's internal `getFilteredNodesXToY` computes; tfjs exports it from no entry point, and its
 * extensionless ESM file cannot be imported in Node).
 */
function nodesFromXsToY(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set<number>(xs.map((x) => x.id));
  const nodeFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => t != null && fromX.has(t.id))) {
      nodeFromX.add(node.id);
      for (const o of node.outputs) fromX.add(o.id);
    }
  }
  const toY = new Set<number>([y.id]);
  const nodeToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((o) => toY.has(o.id))) {
      nodeToY.add(node.id);
      for (const t of Object.values(node.inputs)) if (t != null) toY.add(t.id);
    }
  }
  const out: TapeNode[] = [];
  for (const node of tape) {
    if (!nodeFromX.has(node.id) || !nodeToY.has(node.id)) continue;
    const inputs: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(node.inputs)) if (t != null && fromX.has(t.id)) inputs[k] = t;
    out.push({ ...node, inputs });
  }
  return out;
}

/** Gradients by tensor id; a gradient object is disposed once no entry holds it (several may: identity gradients). */
class GradientMap {
  private byId = new Map<number, tf.Tensor>();
  private holders = new Map<tf.Tensor, number>();
  constructor(private readonly keep: Set<tf.Tensor>) {}
  get(id: number): tf.Tensor | undefined {
    return this.byId.get(id);
  }
  set(id: number, g: tf.Tensor): void {
    const old = this.byId.get(id);
    this.byId.set(id, g);
    this.holders.set(g, (this.holders.get(g) ?? 0) + 1);
    if (old) this.release(old);
  }
  /** Forget the gradient of `id`. */
  drop(id: number): void {
    const g = this.byId.get(id);
    if (!g) return;
    this.byId.delete(id);
    this.release(g);
  }
  /** Dispose `g` if no entry holds it (`g` may be a tensor that was never an entry). */
  disposeUnheld(g: tf.Tensor): void {
    if (!this.holders.has(g) && !this.keep.has(g)) g.dispose();
  }
  private release(g: tf.Tensor): void {
    const n = (this.holders.get(g) ?? 0) - 1;
    if (n > 0) this.holders.set(g, n);
    else {
      this.holders.delete(g);
      this.disposeUnheld(g);
    }
  }
}

function backpropagateFreeing(engine: EngineInternals, grads: GradientMap, tape: TapeNode[], xs: Set<number>): void {
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    const dys = node.outputs.map((o) => grads.get(o.id) ?? null);
    if (node.gradient == null) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
    const names = Object.keys(node.inputs);
    // one scope for the node: tfjs's zeros for outputs outside the graph and the thunks' temporaries go with it
    const dxs = engine.tidy(() => {
      const inputGradients = node.gradient!(dys);
      const out: Record<string, tf.Tensor> = {};
      for (const name of names) {
        if (!(name in inputGradients)) {
          throw new Error(`Cannot backprop through input ${name}. Available gradients found: ${Object.keys(inputGradients)}.`);
        }
        out[name] = engine.tidy(() => inputGradients[name]());
      }
      return out;
    });
    for (const name of names) {
      const dx = dxs[name];
      const x = node.inputs[name];
      if (dx.dtype !== 'float32') {
        throw new Error(
          `Error in gradient for op ${node.kernelName}. The gradient of input ${name} must have 'float32' dtype, but has '${dx.dtype}'`,
        );
      }
      if (!tf.util.arraysEqual(dx.shape, x.shape)) {
        throw new Error(
          `Error in gradient for op ${node.kernelName}. The gradient of input '${name}' has shape '${dx.shape}', which does not match the shape of the input '${x.shape}'`,
        );
      }
      const cur = grads.get(x.id);
      if (cur == null) grads.set(x.id, dx);
      else {
        grads.set(x.id, tf.add(cur, dx));
        grads.disposeUnheld(dx);
      }
    }
    // the node's saved tensors and its outputs' gradients have done their work
    for (const t of node.saved ?? []) t.dispose();
    for (const o of node.outputs) if (!xs.has(o.id)) grads.drop(o.id);
  }
}

let original: EngineInternals['gradients'] | null = null;

function freeingGradients(
  this: EngineInternals,
  f: () => tf.Tensor,
  xs: tf.Tensor[],
  dy?: tf.Tensor,
  allowNoGradients = false,
): { value: tf.Tensor; grads: tf.Tensor[] } {
  // nested or higher-order: the outer tape may still need what this one would free
  if (this.state.gradientDepth > 0) return original!.call(this, f, xs, dy, allowNoGradients);
  if (xs.length === 0) throw new Error('gradients() received an empty list of xs.');
  if (dy != null && dy.dtype !== 'float32') throw new Error(`dy must have 'float32' dtype, but has '${dy.dtype}'`);
  const y = this.scopedRun(
    () => this.startTape(),
    () => this.endTape(),
    () => this.tidy('forward', f),
  );
  if (!(y instanceof tf.Tensor)) throw new Error('The result y returned by f() must be a tensor.');
  const tape = this.state.activeTape ?? [];
  const filtered = nodesFromXsToY(tape, xs, y);
  if (!allowNoGradients && filtered.length === 0 && xs.length > 0) {
    throw new Error(
      'Cannot compute gradient of y=f(x) with respect to x. Make sure that the f you passed encloses all operations that lead from x to y.',
    );
  }
  return this.tidy('backward', () => {
    const keep = new Set<tf.Tensor>(dy != null ? [dy] : []);
    const grads = new GradientMap(keep);
    grads.set(y.id, dy ?? tf.ones(y.shape));
    const xIds = new Set(xs.map((x) => x.id));
    try {
      backpropagateFreeing(this, grads, filtered, xIds);
    } finally {
      // what the walk did not reach (nodes off the path from xs to y) is released as tfjs does
      for (const node of tape) for (const t of node.saved ?? []) t.dispose();
      this.state.activeTape = null;
    }
    return { value: y, grads: xs.map((x) => grads.get(x.id)!) } as unknown as tf.TensorContainer;
  }) as unknown as { value: tf.Tensor; grads: tf.Tensor[] };
}

/** Use the freeing backward pass (default) or tfjs's own (`false`). Returns whether it was on. */
export function setFreeingTape(enable: boolean): boolean {
  const engine = tf.engine() as unknown as EngineInternals;
  const wasOn = original != null && engine.gradients === freeingGradients;
  if (enable && !wasOn) {
    original = engine.gradients;
    engine.gradients = freeingGradients;
  } else if (!enable && wasOn) {
    engine.gradients = original!;
  }
  return wasOn;
}

setFreeingTape(true);
