import * as tf from '@tensorflow/tfjs';
import { VisBackbonesError } from '../errors.js';

/**
 * TF.js model directories (`model.json` + `weights.bin`) on the local file system, for Node where
 * `@tensorflow/tfjs-node`'s `file://` handler is not available. The directory loads in a browser with
 * `tf.loadLayersModel(url + '/model.json')` (after `import 'visbackbones'` registers the layer class).
 */

async function fs() {
  return import('node:fs/promises');
}

/** Save a LayersModel to `dir` (created if needed). */
export async function saveLayersModelToDir(model: tf.LayersModel, dir: string): Promise<tf.io.SaveResult> {
  const { mkdir, writeFile } = await fs();
  const { join } = await import('node:path');
  return model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      await mkdir(dir, { recursive: true });
      const wd = artifacts.weightData;
      const data = wd === undefined ? new ArrayBuffer(0) : Array.isArray(wd) ? tf.io.concatenateArrayBuffers(wd) : wd;
      await writeFile(join(dir, 'weights.bin'), new Uint8Array(data));
      const json = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: 'visbackbones',
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
      };
      await writeFile(join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
}

/** Load a LayersModel saved by {@link saveLayersModelToDir} (or any TF.js layers-model directory). */
export async function loadLayersModelFromDir(dir: string): Promise<tf.LayersModel> {
  const { readFile } = await fs();
  const { join } = await import('node:path');
  let json: { modelTopology: object; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[]; format?: string };
  try {
    json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
  } catch (e) {
    throw new VisBackbonesError(`cannot read ${join(dir, 'model.json')}: ${(e as Error).message}`);
  }
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: ArrayBuffer[] = [];
  for (const group of json.weightsManifest ?? []) {
    for (const p of group.paths) {
      const b = await readFile(join(dir, p));
      buffers.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
    }
    specs.push(...group.weights);
  }
  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: specs,
      weightData: tf.io.concatenateArrayBuffers(buffers),
      format: json.format,
    }),
  );
}
