import { createHash } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';

/** One file of a repository the fake hub serves. */
export interface HubFile {
  repo: string;
  path: string;
  bytes: Uint8Array;
  /** The repository's head commit (`X-Repo-Commit`). */
  commit: string;
  /** The commit that last touched the file (paths-info `lastCommit.id`). */
  lastCommit: string;
  /** Require `Authorization: Bearer <token>`. */
  token?: string;
}

/** A local stand-in for the Hugging Face Hub on 127.0.0.1, in the hub's URL layout. */
export interface FakeHub {
  url: string;
  requests: string[];
  close(): Promise<void>;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * Serves `files` as the hub does: `HEAD|GET /<repo>/resolve/<rev>/<path>` answers 302 to a CDN URL
 * (`/cdn/<sha256>`) with `X-Repo-Commit`, `X-Linked-Etag`, `X-Linked-Size`; the CDN honours `Range`;
 * `POST /api/models/<repo>/paths-info/<rev>` lists the file with its LFS oid, size and last commit.
 */
export function fakeHub(files: HubFile[]): Promise<FakeHub> {
  const requests: string[] = [];
  const blobs = new Map(files.map((f) => [sha256(f.bytes), f]));
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname);
    requests.push(`${req.method} ${path}${req.headers.range ? ` (${req.headers.range})` : ''}`);
    const denied = (f: HubFile) => f.token && req.headers.authorization !== `Bearer ${f.token}`;
    const paths = /^\/api\/models\/(.+)\/paths-info\/([^/]+)$/.exec(path);
    if (paths && req.method === 'POST') {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const want: string[] = JSON.parse(body || '{}').paths ?? [];
        const repo = paths[1];
        const hits = files.filter((f) => f.repo === repo && want.includes(f.path));
        if (hits.some(denied)) return void res.writeHead(401).end('unauthorized');
        if (!files.some((f) => f.repo === repo)) return void res.writeHead(404, { 'X-Error-Code': 'RepoNotFound' }).end('not found');
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify(
            hits.map((f) => ({
              type: 'file',
              path: f.path,
              size: f.bytes.length,
              oid: sha256(f.bytes).slice(0, 40),
              lfs: { oid: sha256(f.bytes), size: f.bytes.length, pointerSize: 134 },
              lastCommit: { id: f.lastCommit, title: 'upload', date: '2024-01-01T00:00:00.000Z' },
            })),
          ),
        );
      });
      return;
    }
    const resolve = /^\/(.+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (resolve) {
      const [, repo, , file] = resolve;
      const f = files.find((x) => x.repo === repo && x.path === file);
      if (!f) return void res.writeHead(404, { 'X-Error-Code': 'EntryNotFound' }).end('not found');
      if (denied(f)) return void res.writeHead(401).end('unauthorized');
      const etag = sha256(f.bytes);
      res.writeHead(302, {
        Location: `/cdn/${etag}`,
        'X-Repo-Commit': f.commit,
        'X-Linked-Etag': `"${etag}"`,
        'X-Linked-Size': String(f.bytes.length),
        ETag: `"${etag.slice(0, 40)}"`,
      });
      return void res.end();
    }
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(path);
    const f = cdn ? blobs.get(cdn[1]) : undefined;
    if (f) {
      const range = /^bytes=(\d+)-(\d+)?$/.exec(String(req.headers.range ?? ''));
      const etag = `"${cdn![1]}"`;
      if (range) {
        const a = Number(range[1]);
        const b = Math.min(range[2] !== undefined ? Number(range[2]) : f.bytes.length - 1, f.bytes.length - 1);
        res.writeHead(206, {
          'Content-Range': `bytes ${a}-${b}/${f.bytes.length}`,
          'Content-Length': String(b - a + 1),
          ETag: etag,
          'content-type': 'application/octet-stream',
        });
        return void res.end(req.method === 'HEAD' ? undefined : Buffer.from(f.bytes.subarray(a, b + 1)));
      }
      res.writeHead(200, { 'Content-Length': String(f.bytes.length), ETag: etag, 'content-type': 'application/octet-stream' });
      return void res.end(req.method === 'HEAD' ? undefined : Buffer.from(f.bytes));
    }
    res.writeHead(404).end('not found');
  };
  const server: Server = createServer(handler);
  return new Promise((resolveP) =>
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address() as { port: number };
      resolveP({
        url: `http://127.0.0.1:${addr.port}`,
        requests,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections?.();
            server.close(() => r());
          }),
      });
    }),
  );
}
