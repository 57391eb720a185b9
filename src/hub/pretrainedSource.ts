import { check } from '../errors.js';
import { getPretrainedCfg, TimmPretrainedCfg } from '../data/pretrainedCfgs.js';

/** The public Hugging Face Hub. */
export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

/** Where a pretrained tag's weights come from. */
export interface PretrainedSource {
  url: string;
  /** `'safetensors'` (hub weights) or `'pytorch'` (a pickle the library cannot read; convert it once). */
  format: 'safetensors' | 'pytorch';
  hfHubId?: string;
  filename?: string;
  revision?: string;
}

/** `$HF_ENDPOINT` (Node) or the public hub, without a trailing slash. */
export function hubEndpoint(endpoint?: string): string {
  const env = typeof process !== 'undefined' ? process.env?.HF_ENDPOINT : undefined;
  return (endpoint ?? env ?? DEFAULT_HUB_ENDPOINT).replace(/\/+$/, '');
}

/** A cfg from a name (`'<arch>[.<tag>]'`) or the cfg itself. */
export function cfgFrom(nameOrCfg: string | Partial<TimmPretrainedCfg>): Partial<TimmPretrainedCfg> {
  if (typeof nameOrCfg === 'string') return getPretrainedCfg(nameOrCfg);
  check(typeof nameOrCfg === 'object' && nameOrCfg !== null, () => `expected a model name or a pretrained cfg, got ${String(nameOrCfg)}`);
  return nameOrCfg;
}

/**
 * Where the weights of a pretrained tag are: timm tags on the hub at
 * `<endpoint>/<hfHubId>/resolve/<revision ?? 'main'>/<hfHubFilename ?? 'model.safetensors'>` (a
 * `'<repo>@<rev>'` id carries the revision); CSWin's official GitHub-release `.pth` (format
 * `'pytorch'`); null when the tag has no weights.
 */
export function pretrainedSource(
  nameOrCfg: string | Partial<TimmPretrainedCfg>,
  opts: { endpoint?: string; revision?: string } = {},
): PretrainedSource | null {
  const cfg = cfgFrom(nameOrCfg);
  if (cfg.hfHubId) {
    const at = cfg.hfHubId.indexOf('@');
    const repo = at < 0 ? cfg.hfHubId : cfg.hfHubId.slice(0, at);
    const revision = opts.revision ?? (at < 0 ? 'main' : cfg.hfHubId.slice(at + 1));
    const filename = cfg.hfHubFilename ?? 'model.safetensors';
    const url = `${hubEndpoint(opts.endpoint)}/${repo}/resolve/${encodeURIComponent(revision)}/${filename}`;
    return { url, format: filename.endsWith('.safetensors') ? 'safetensors' : 'pytorch', hfHubId: repo, filename, revision };
  }
  if (cfg.url) return { url: cfg.url, format: /\.safetensors($|\?)/.test(cfg.url) ? 'safetensors' : 'pytorch' };
  return null;
}
