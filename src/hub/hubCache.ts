import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** A 40-hex-digit git commit id. */
export const COMMIT_RE = /^[0-9a-f]{40}$/;

/**
 * The Hugging Face cache folder (Node): `cacheDir ?? $VISBACKBONES_CACHE ?? $HF_HUB_CACHE ?? $HF_HOME/hub ??
 * ~/.cache/huggingface/hub`, shared with Python's `huggingface_hub`.
 */
export function hubCacheDir(cacheDir?: string): string {
  const env = process.env;
  if (cacheDir) return cacheDir;
  if (env.VISBACKBONES_CACHE) return env.VISBACKBONES_CACHE;
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HF_HOME) return join(env.HF_HOME, 'hub');
  return join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface', 'hub');
}

/** `models--<org>--<name>` (the cache's folder of a model repository). */
export function repoFolder(cacheDir: string, repo: string): string {
  return join(cacheDir, `models--${repo.split('/').join('--')}`);
}

/**
 * The cached file of `repo@revision` without any network access: `refs/<revision>` -> commit (or the
 * revision itself when it is a commit id) -> `snapshots/<commit>/<filename>`; null when absent.
 */
export function cachedFile(cacheDir: string, repo: string, revision: string, filename: string): string | null {
  const dir = repoFolder(cacheDir, repo);
  let commit = revision;
  if (!COMMIT_RE.test(revision)) {
    const ref = join(dir, 'refs', revision);
    if (!existsSync(ref)) return null;
    commit = readFileSync(ref, 'utf8').trim();
  }
  const p = join(dir, 'snapshots', commit, filename);
  return existsSync(p) ? p : null;
}

/** `HF_HUB_OFFLINE` set to a true value (`1`, `true`, `yes`, `on`). */
export function envOffline(): boolean {
  const v = (typeof process !== 'undefined' ? process.env?.HF_HUB_OFFLINE : undefined) ?? '';
  return ['1', 'true', 'yes', 'on'].includes(v.toLowerCase());
}
