import type { ProgressCallback } from './progress.js';

/** Options of {@link downloadPretrained}. */
export interface DownloadOptions {
  /** Cache folder (Node; default `$VISBACKBONES_CACHE`, `$HF_HUB_CACHE`, `$HF_HOME/hub`, `~/.cache/huggingface/hub`). */
  cacheDir?: string;
  /** Git revision (branch, tag or commit); default the hub id's `@rev` or `'main'`. */
  revision?: string;
  /** Hub token for private / gated repositories (default `$HF_TOKEN`); sent as `Authorization: Bearer`. */
  token?: string;
  /** Hub endpoint (default `$HF_ENDPOINT` or https://huggingface.co). */
  endpoint?: string;
  /** The `fetch` to use (proxies, tests). */
  fetch?: typeof fetch;
  /** Use the cache only (default `$HF_HUB_OFFLINE`). */
  offline?: boolean;
  /** Called as bytes arrive. */
  onProgress?: ProgressCallback;
  /** Draw a progress bar on a terminal's stderr (default true). */
  progress?: boolean;
}
