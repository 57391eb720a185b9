import {
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  copyFileSync,
  renameSync,
} from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { VisBackbonesError } from '../errors.js';
import type { DownloadOptions } from './downloadOptions.js';
import { cachedFile, COMMIT_RE, envOffline, hubCacheDir, repoFolder } from './hubCache.js';
import { hubEndpoint, PretrainedSource } from './pretrainedSource.js';
import { countingResponse, progressReporter } from './progress.js';

function headerOf(init: RequestInit | undefined, name: string): string | null {
  return init?.headers ? new Headers(init.headers).get(name) : null;
}

function urlOf(input: string | URL | Request): string {
  return typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
}

/** Point `snapshots/<commit>/<file>` at the blob (relative symlink, a copy where links are not allowed). */
function linkSnapshot(repoDir: string, commit: string, filename: string, blob: string): string {
  const pointer = join(repoDir, 'snapshots', commit, filename);
  if (existsSync(pointer)) return pointer;
  mkdirSync(dirname(pointer), { recursive: true });
  try {
    symlinkSync(relative(dirname(pointer), blob), pointer);
  } catch {
    copyFileSync(blob, pointer);
  }
  return pointer;
}

function writeRef(repoDir: string, revision: string, commit: string): void {
  const ref = join(repoDir, 'refs', ...revision.split('/'));
  mkdirSync(dirname(ref), { recursive: true });
  const tmp = `${ref}.${process.pid}.tmp`;
  writeFileSync(tmp, commit);
  renameSync(tmp, ref);
}

/**
 * Node: the file of `src` from the Hugging Face cache, downloading it with `@huggingface/hub`'s
 * `downloadFileToCacheDir` on a miss (temp file + rename into `blobs/<etag>`, `snapshots/<commit>/<file>`
 * linked to it). The cache is consulted first without any network access (`refs/<revision>` ->
 * `snapshots/`), and after a download `refs/<revision>` records the resolve response's `X-Repo-Commit`,
 * as Python's `huggingface_hub` does, so either side reuses the other's files.
 */
export async function downloadToHubCache(src: PretrainedSource, label: string, opts: DownloadOptions): Promise<Uint8Array> {
  const repo = src.hfHubId!;
  const filename = src.filename ?? 'model.safetensors';
  const revision = src.revision ?? 'main';
  const cacheDir = hubCacheDir(opts.cacheDir);
  const repoDir = repoFolder(cacheDir, repo);
  const hit = cachedFile(cacheDir, repo, revision, filename);
  if (hit) return new Uint8Array(readFileSync(hit));
  if (opts.offline ?? envOffline()) {
    throw new VisBackbonesError(
      `offline mode: '${filename}' of ${repo} (revision ${revision}, for '${label}') is not in the cache ${repoDir} ` +
        `(looked for refs/${revision} -> snapshots/<commit>/${filename}); download it once online or unset HF_HUB_OFFLINE`,
    );
  }
  const token = opts.token ?? process.env.HF_TOKEN ?? undefined;
  const base = opts.fetch ?? fetch;
  const rep = progressReporter(label, opts.onProgress, opts.progress ?? true);
  const auth: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  // the resolve response itself (not the CDN it redirects to) names the commit, the blob's etag and size
  let head: Response;
  try {
    head = await base(src.url, { method: 'HEAD', redirect: 'manual', headers: auth });
  } catch (e) {
    throw new VisBackbonesError(
      `cannot reach ${src.url} for '${label}' (${(e as Error).message}); offline, the cache ${repoDir} has no copy`,
    );
  }
  if (head.status === 401 || head.status === 403) {
    throw new VisBackbonesError(
      `${src.url}: HTTP ${head.status}; a private or gated repository needs a token (HF_TOKEN or the token option)`,
    );
  }
  if (head.status === 404) throw new VisBackbonesError(`${src.url}: HTTP 404, ${repo} has no '${filename}' at revision ${revision}`);
  if (head.status >= 400) throw new VisBackbonesError(`${src.url}: HTTP ${head.status} ${head.statusText}`);
  let repoCommit: string | null = head.headers.get('X-Repo-Commit');
  let size = Number(head.headers.get('X-Linked-Size') ?? NaN);
  if (!Number.isFinite(size)) size = head.status < 300 ? Number(head.headers.get('Content-Length') ?? 0) : 0;
  const wrapped = (async (input: string | URL | Request, init?: RequestInit) => {
    const res = await base(input, init);
    const url = urlOf(input);
    const method = (init?.method ?? 'GET').toUpperCase();
    if (method !== 'GET' || url.includes('/api/') || !res.ok) return res;
    if (headerOf(init, 'Range') === 'bytes=0-0') {
      repoCommit ??= res.headers.get('X-Repo-Commit');
      if (!size) size = Number(res.headers.get('Content-Range')?.split('/').pop() ?? 0) || 0;
      return res;
    }
    return countingResponse(res, size || Number(res.headers.get('Content-Length') ?? 0), rep.update);
  }) as typeof fetch;
  let hub: typeof import('@huggingface/hub');
  try {
    hub = await import('@huggingface/hub');
  } catch {
    throw new VisBackbonesError('downloading weights in Node needs @huggingface/hub (npm install @huggingface/hub)');
  }
  const debug = console.debug;
  let pointer: string;
  try {
    console.debug = () => {};
    pointer = await hub.downloadFileToCacheDir({
      repo: { type: 'model', name: repo },
      path: filename,
      revision,
      hubUrl: hubEndpoint(opts.endpoint),
      cacheDir,
      fetch: wrapped,
      ...(token ? { accessToken: token } : {}),
    });
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    throw new VisBackbonesError(
      `downloading ${src.url} for '${label}' failed: ${msg}` +
        (/401|403|unauthori|forbidden/i.test(msg) ? ' (a private or gated repository needs HF_TOKEN / token)' : ''),
    );
  } finally {
    console.debug = debug;
  }
  const blob = realpathSync(pointer);
  const got = statSync(blob).size;
  if (size && got !== size) {
    rmSync(pointer, { force: true });
    rmSync(blob, { force: true });
    throw new VisBackbonesError(
      `downloading ${src.url}: the file has ${got} bytes, the hub announced ${size}; removed it from the cache, try again`,
    );
  }
  const snapshotId = relative(join(repoDir, 'snapshots'), pointer).split(sep)[0];
  const commit = repoCommit && COMMIT_RE.test(repoCommit) ? repoCommit : snapshotId;
  if (commit !== snapshotId) linkSnapshot(repoDir, commit, filename, blob);
  if (!COMMIT_RE.test(revision)) writeRef(repoDir, revision, commit);
  rep.update(got, size || got);
  rep.done();
  return new Uint8Array(readFileSync(blob));
}
