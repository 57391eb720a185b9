/**
 * A family is one folder: for every family folder `src/models/<f>/`, at most one file of the shared code
 * names it (imports from that folder, or has the family's registry name as a string literal) - the
 * package index. Shared code: `src/` outside that folder and outside `src/pretrain/` (a pretraining
 * wrapper built for one backbone may import it: it sits above every family), `test/helpers/`, `gpu/`,
 * `bench/` outside `bench/suites/`. Tasks (`src/tasks/`) are shared code: they reach a family through
 * the registry and structural types, never by importing its folder.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../../src/index.js';
import { getModelEntry, listModels } from '../../src/models/registry.js';

const ROOT = join(__dirname, '..', '..');

function files(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (/\.(ts|mts|js|mjs)$/.test(e)) out.push(p);
  }
  return out;
}

/** Registry names of the families defined in each folder (from the registered variants). */
function familyNamesByFolder(): Map<string, Set<string>> {
  const byFolder = new Map<string, Set<string>>();
  for (const folder of readdirSync(join(ROOT, 'src', 'models'))) {
    if (statSync(join(ROOT, 'src', 'models', folder)).isDirectory()) byFolder.set(folder, new Set());
  }
  for (const n of listModels()) {
    const fam = getModelEntry(n).family;
    for (const [folder, set] of byFolder) {
      const src = files(join(ROOT, 'src', 'models', folder))
        .map((f) => readFileSync(f, 'utf8'))
        .join('\n');
      if (src.includes(`name: '${fam}'`)) set.add(fam);
    }
  }
  return byFolder;
}

describe('family seams', () => {
  const shared = [
    ...files(join(ROOT, 'src')).filter((f) => !f.startsWith(join(ROOT, 'src', 'pretrain') + sep)),
    ...files(join(ROOT, 'test', 'helpers')),
    ...files(join(ROOT, 'gpu')),
    ...files(join(ROOT, 'bench')).filter((f) => !f.startsWith(join(ROOT, 'bench', 'suites') + sep)),
  ];
  // code only: doc comments may mention a family by name
  const stripComments = (t: string) => t.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const texts = new Map(shared.map((f) => [f, stripComments(readFileSync(f, 'utf8'))]));
  for (const [folder, names] of familyNamesByFolder()) {
    it(`src/models/${folder}/ is named by at most one shared file (the package index)`, () => {
      const own = join(ROOT, 'src', 'models', folder) + sep;
      const importRe = new RegExp(`from '[./]*(models/)?${folder}/|from '\\.\\./${folder}/|models/${folder}/`);
      const naming: string[] = [];
      for (const [f, text] of texts) {
        if (f.startsWith(own)) continue;
        const literal = [...names].some((n) => text.includes(`'${n}'`));
        if (importRe.test(text) || literal) naming.push(relative(ROOT, f));
      }
      expect(
        naming.filter((f) => f !== join('src', 'index.ts')),
        `files naming ${folder}: ${naming.join(', ')}`,
      ).toEqual([]);
    });
  }
});
