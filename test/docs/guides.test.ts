/**
 * The guides in docs/guides are written against the code as it is: every ```ts block is a complete
 * module that must type-check against the sources (imports of 'visbackbones' resolve to src/), and the
 * blocks whose first line is `// run` are executed (on the wasm backend, in a child process) and must
 * exit cleanly.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..', '..');
const GUIDES = join(ROOT, 'docs', 'guides');
const OUT = join(ROOT, 'out', 'doc-snippets');

interface Snippet {
  guide: string;
  index: number;
  line: number;
  code: string;
  run: boolean;
  file: string;
}

function snippets(): Snippet[] {
  const out: Snippet[] = [];
  for (const guide of readdirSync(GUIDES)
    .filter((f) => f.endsWith('.md'))
    .sort()) {
    const text = readFileSync(join(GUIDES, guide), 'utf8');
    const re = /^([ \t]*)```ts\n([\s\S]*?)^\1```/gm;
    let m: RegExpExecArray | null;
    let i = 0;
    while ((m = re.exec(text))) {
      const indent = m[1];
      const code = m[2]
        .split('\n')
        .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l))
        .join('\n');
      const line = text.slice(0, m.index).split('\n').length;
      const name = `${guide.replace(/\.md$/, '').replace(/[^a-z0-9]+/gi, '_')}_${i}.ts`;
      out.push({ guide, index: i, line, code, run: /^\/\/ run\b/.test(code), file: join(OUT, name) });
      i++;
    }
  }
  return out;
}

const ALL = snippets();
rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
for (const s of ALL) {
  const src = relative(OUT, join(ROOT, 'src', 'index.js')).replace(/\\/g, '/');
  // each snippet is an ES module (top-level await allowed); 'visbackbones' is this checkout's src/
  writeFileSync(s.file, `${s.code.replace(/from 'visbackbones'/g, `from '${src}'`)}\nexport {};\n`);
}
afterAll(() => rmSync(OUT, { recursive: true, force: true }));

describe('docs/guides code blocks', () => {
  it('the guides are all there, and most have code', () => {
    const core = [
      'backends.md',
      'browser.md',
      'custom-backbone.md',
      'heads-and-transfer.md',
      'pretraining.md',
      'quick-start.md',
      'timm-checkpoints.md',
    ];
    expect(readdirSync(GUIDES).sort()).toEqual(expect.arrayContaining(core));
    // a guide per family or system beside the core ones: every guide file has a code block
    for (const g of readdirSync(GUIDES).filter((f) => f.endsWith('.md')))
      expect(
        ALL.some((s) => s.guide === g),
        g,
      ).toBe(true);
    expect(new Set(ALL.map((s) => s.guide)).size).toBeGreaterThanOrEqual(6);
    expect(ALL.filter((s) => s.run).length).toBeGreaterThanOrEqual(4);
  });

  it('every ts block type-checks against the sources', () => {
    const cfg = ts.getParsedCommandLineOfConfigFile(
      join(ROOT, 'tsconfig.json'),
      {},
      { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} },
    )!;
    const program = ts.createProgram(
      ALL.map((s) => s.file),
      { ...cfg.options, noEmit: true, module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    );
    const problems = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file && d.file.fileName.startsWith(OUT))
      .map((d) => {
        const s = ALL.find((x) => x.file === d.file!.fileName)!;
        const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
        return `${s.guide}:${s.line + 1 + line}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      });
    expect(problems).toEqual([]);
  }, 240_000);

  for (const s of ALL.filter((x) => x.run)) {
    it(`${s.guide} block ${s.index} (line ${s.line}) runs`, () => {
      execFileSync(process.execPath, ['--import', 'tsx', s.file], { cwd: ROOT, encoding: 'utf8', stdio: 'pipe', timeout: 240_000 });
    }, 300_000);
  }
});
