import { VisBackbonesError } from '../errors.js';
import type { TimmPretrainedCfg } from '../data/pretrainedCfgs.js';
import { cfgFrom, hubEndpoint, pretrainedSource, PretrainedSource } from './pretrainedSource.js';
import type { DownloadOptions } from './downloadOptions.js';
import { countingResponse, progressReporter } from './progress.js';

export type { DownloadOptions };

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

function sourceOf(
  nameOrCfg: string | Partial<TimmPretrainedCfg>,
  opts: DownloadOptions,
): { cfg: Partial<TimmPretrainedCfg>; src: PretrainedSource } {
  const cfg = cfgFrom(nameOrCfg);
  const src = pretrainedSource(cfg, { endpoint: opts.endpoint, revision: opts.revision });
  const name = cfg.name ?? String(cfg.hfHubId);
  if (!src || cfg.hasWeights === false)
    throw new VisBackbonesError(
      `'${name}' has no pretrained weights (listPretrained('${cfg.architecture ?? name}') lists the tags that have)`,
    );
  if (src.format !== 'safetensors') {
    throw new VisBackbonesError(
      `the weights of '${name}' are a PyTorch pickle (${src.url}), which this library cannot read: convert it once to safetensors ` +
        `(torch.load + safetensors.torch.save_file) and load it with loadTimmWeights`,
    );
  }
  return { cfg, src };
}

/**
 * The safetensors bytes of a pretrained tag, through the cache: in Node the Hugging Face cache
 * (`models--<org>--<name>/{refs, snapshots, blobs}`, shared with Python), in a browser the Cache
 * Storage API (`caches.open('visbackbones')`). Offline (`offline` / `HF_HUB_OFFLINE=1`) only the cache
 * is used and a miss names the file and the cache path.
 */
export async function downloadPretrained(nameOrCfg: string | Partial<TimmPretrainedCfg>, opts: DownloadOptions = {}): Promise<Uint8Array> {
  const { cfg, src } = sourceOf(nameOrCfg, opts);
  const label = cfg.name ?? src.filename ?? 'weights';
  if (isNode && src.hfHubId) {
    const { downloadToHubCache } = await import('./nodeDownload.js');
    return downloadToHubCache(src, label, opts);
  }
  return downloadBrowser(src, label, opts);
}

async function downloadBrowser(src: PretrainedSource, label: string, opts: DownloadOptions): Promise<Uint8Array> {
  const offline = opts.offline ?? false;
  const cache = typeof caches !== 'undefined' ? await caches.open('visbackbones') : null;
  const hit = cache ? await cache.match(src.url) : undefined;
  if (hit) return new Uint8Array(await hit.arrayBuffer());
  if (offline)
    throw new VisBackbonesError(
      `offline: ${src.filename ?? src.url} of '${label}' is not in the browser cache 'visbackbones' (${src.url})`,
    );
  const token = opts.token;
  const f = opts.fetch ?? fetch;
  const res = await f(src.url, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
  if (!res.ok) throw new VisBackbonesError(`downloading ${src.url} failed: HTTP ${res.status} ${res.statusText}`);
  const total = Number(res.headers.get('content-length') ?? 0);
  const rep = progressReporter(label, opts.onProgress, opts.progress ?? true);
  const bytes = new Uint8Array(await countingResponse(res, total, rep.update).arrayBuffer());
  rep.done();
  if (total && bytes.length !== total) throw new VisBackbonesError(`downloading ${src.url}: got ${bytes.length} of ${total} bytes`);
  if (cache)
    await cache.put(
      src.url,
      new Response(bytes.slice(), { headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) } }),
    );
  return bytes;
}

export { hubEndpoint };
