import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildKernels, kernelsModuleSource } from '../../src/backends/native/build.mjs';
import { KERNELS_SHARED_WASM, KERNELS_WASM } from '../../src/backends/native/kernelsWasm.js';

/**
 * The committed kernel binaries are what their AssemblyScript source builds to, the base64 module
 * the package loads holds exactly them, and they are safe to run on tfjs-wasm's memory: they import
 * that memory and nothing else, and carry no data segment that would overwrite it.
 */
const native = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'backends', 'native');
const committed = {
  plain: new Uint8Array(readFileSync(join(native, 'kernels.wasm'))),
  shared: new Uint8Array(readFileSync(join(native, 'kernels-shared.wasm'))),
};

/** Ids of the sections of a wasm binary, in order. */
function sectionIds(bin: Uint8Array): number[] {
  const ids: number[] = [];
  let p = 8;
  while (p < bin.length) {
    const id = bin[p++];
    let size = 0;
    let shift = 0;
    for (;;) {
      const b = bin[p++];
      size |= (b & 0x7f) << shift;
      shift += 7;
      if (!(b & 0x80)) break;
    }
    ids.push(id);
    p += size;
  }
  return ids;
}

describe('kernel module build', () => {
  it('the committed .wasm files equal a fresh build of native/assembly', async () => {
    const built = await buildKernels();
    expect(Buffer.compare(Buffer.from(built.plain), Buffer.from(committed.plain))).toBe(0);
    expect(Buffer.compare(Buffer.from(built.shared), Buffer.from(committed.shared))).toBe(0);
    const ts = readFileSync(join(native, 'kernelsWasm.ts'), 'utf8');
    // the relaxed-SIMD builds live only in kernelsWasm.ts (test/backends/relaxedSimd.test.ts checks them)
    expect(ts).toBe(kernelsModuleSource(committed.plain, committed.shared, built.relaxed, built.relaxedShared));
  }, 120_000);

  it('`npm run build` builds them (before tsup, which copies them into dist/), and the package exports them', () => {
    const pkg = JSON.parse(readFileSync(join(native, '..', '..', '..', 'package.json'), 'utf8'));
    const steps = (pkg.scripts.build as string).split('&&').map((s) => s.trim());
    expect(steps[0]).toBe('npm run build:kernels');
    expect(steps.indexOf('tsup')).toBeGreaterThan(0);
    expect(pkg.scripts['build:kernels']).toBe('node src/backends/native/build.mjs');
    expect(pkg.devDependencies.assemblyscript).toBeDefined();
    expect(pkg.files).toContain('dist');
    expect(pkg.exports['./kernels.wasm']).toBe('./dist/kernels.wasm');
    expect(pkg.exports['./kernels-shared.wasm']).toBe('./dist/kernels-shared.wasm');
  });

  it('kernelsWasm.ts holds exactly the committed binaries', () => {
    expect(Buffer.from(KERNELS_WASM, 'base64').equals(Buffer.from(committed.plain))).toBe(true);
    expect(Buffer.from(KERNELS_SHARED_WASM, 'base64').equals(Buffer.from(committed.shared))).toBe(true);
  });

  it('imports only env.memory (plain / shared), has no data or start section', () => {
    for (const [name, bin] of Object.entries(committed)) {
      const m = new WebAssembly.Module(bin);
      expect(WebAssembly.Module.imports(m), name).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
      const ids = sectionIds(bin);
      expect(ids.includes(11), `${name}: data section`).toBe(false);
      expect(ids.includes(12), `${name}: data count section`).toBe(false);
      expect(ids.includes(8), `${name}: start section`).toBe(false);
      expect(ids.includes(2), `${name}: import section`).toBe(true);
    }
    // the shared variant instantiates on a shared memory, the plain one on a plain memory
    new WebAssembly.Instance(new WebAssembly.Module(committed.plain), { env: { memory: new WebAssembly.Memory({ initial: 1 }) } });
    new WebAssembly.Instance(new WebAssembly.Module(committed.shared), {
      env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true }) },
    });
    expect(
      () =>
        new WebAssembly.Instance(new WebAssembly.Module(committed.plain), {
          env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 8, shared: true }) },
        }),
    ).toThrow();
  });
});
