import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { getPretrainedCfg } from '../../src/data/pretrainedCfgs.js';
import { FIXTURES_DIR } from '../helpers/fixtures.js';

const ROOT = join(FIXTURES_DIR, '..', '..');
const BIN = join(ROOT, 'bin', 'visbackbones.js');
const CASE = join(FIXTURES_DIR, 'swin_p4w4_64', 'case.json');

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** The bin script as a shell pipeline (bash, with pipefail so the CLI's own exit status counts). */
function pipeline(cmd: string): { status: number | null; stdout: string; stderr: string } {
  const env = { ...process.env, VB: BIN, NODE: process.execPath };
  return spawnSync('bash', ['-c', `set -o pipefail; ${cmd}`], { cwd: ROOT, encoding: 'utf8', env });
}

describe('visbackbones as a shell user meets it', () => {
  it('list piped into a reader that stops early (head, true) exits quietly with status 0', () => {
    const head = pipeline('"$NODE" "$VB" list | head -n 2');
    expect(head.status, head.stderr).toBe(0);
    expect(head.stdout.trim().split('\n')).toHaveLength(2);
    // `true` reads nothing and exits before the CLI writes: every write hits a closed pipe
    const closed = pipeline('"$NODE" "$VB" list | true');
    expect(closed.status, closed.stderr).toBe(0);
    expect(closed.stderr).not.toMatch(/EPIPE|Error|at /);
  }, 60_000);

  it('info prints the preprocessing of the default pretrained tag and the weights URL', async () => {
    const saved = process.env.HF_ENDPOINT;
    delete process.env.HF_ENDPOINT;
    try {
      const r = await cli('info', 'swin_tiny_patch4_window7_224', '--config', CASE, '--backend', 'cpu', '--no-flops');
      expect(r.code, r.err).toBe(0);
      const pc = getPretrainedCfg('swin_tiny_patch4_window7_224');
      expect(r.out).toContain(`input size ${pc.inputSize[1]}x${pc.inputSize[2]}`);
      expect(r.out).toContain(`crop pct ${pc.cropPct}`);
      expect(r.out).toContain(`interpolation ${pc.interpolation}`);
      expect(r.out).toContain(`mean ${pc.mean.join(', ')}, std ${pc.std.join(', ')}`);
      expect(r.out).toContain(`weights:     https://huggingface.co/${pc.hfHubId}/resolve/main/model.safetensors`);
      // the model itself is the one --config asks for
      expect(r.out).toMatch(/input:\s+64x64x3/);

      const tagged = await cli('info', 'swin_tiny_patch4_window7_224.ms_in1k', '--config', CASE, '--backend', 'cpu', '--no-flops');
      expect(tagged.code, tagged.err).toBe(0);
      expect(tagged.out).toContain('(swin_tiny_patch4_window7_224.ms_in1k)');
      expect(tagged.out).toContain('https://huggingface.co/timm/swin_tiny_patch4_window7_224.ms_in1k/resolve/main/model.safetensors');
      const badTag = await cli('info', 'swin_tiny_patch4_window7_224.no_such_tag', '--no-flops', '--backend', 'cpu');
      expect(badTag.code).toBe(2);
      expect(badTag.err).toMatch(/has no pretrained tag 'no_such_tag'; its tags: swin_tiny_patch4_window7_224\.ms_in1k/);
    } finally {
      if (saved !== undefined) process.env.HF_ENDPOINT = saved;
    }
  });

  it('an unknown model name points at `visbackbones list` (exit 2)', async () => {
    for (const cmd of ['info', 'bench']) {
      const r = await cli(cmd, 'swin_tiny_patch4_windw7_224');
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/unknown model 'swin_tiny_patch4_windw7_224'; similar names: .*swin_tiny_patch4_window7_224/);
      expect(r.err).toContain('visbackbones list');
    }
  });

  it('bench --threads runs threaded wasm; --threads with the cpu backend is a usage error', async () => {
    const cpu = await cli('bench', 'swin_tiny_patch4_window7_224', '--backend', 'cpu', '--threads', '2');
    expect(cpu.code).toBe(2);
    expect(cpu.err).toMatch(/--threads 2: only the wasm backend runs threaded/);
    const zero = await cli('bench', 'swin_tiny_patch4_window7_224', '--threads', '0');
    expect(zero.code).toBe(2);
    expect(zero.err).toMatch(/--threads 0: expected a positive integer/);
    // a process of its own: threads re-create this worker's wasm backend otherwise
    const r = spawnSync(process.execPath, [BIN, 'bench', 'cswin_tiny_224', '--threads', '2', '--reps', '1'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/cswin_tiny_224 on wasm \(2 threads\): batch 1 at 224x224/);
    expect(Number(/([0-9.]+) img\/s/.exec(r.stdout)![1])).toBeGreaterThan(0);
    expect(r.stderr).not.toMatch(/MaxListenersExceeded/);
  }, 120_000);
});
