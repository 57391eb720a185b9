"""
PyTorch eager on the same machine, for the ratios in bench/results: one SGD training step (batch 8,
softmax cross-entropy, backward, update) and a batch-1 forward of the `standins.py` models (checked
equal to visbackbones' by `export_onnx.py --check`), CPU-seconds per call, medians.

    python3 bench/peers/torch_step.py [--threads N] [--reps R] [model ...]
"""
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit('/', 1)[0])
from standins import STANDINS  # noqa: E402


def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def median(xs):
    return sorted(xs)[len(xs) // 2]


def main():
    args = sys.argv[1:]
    threads = int(args[args.index('--threads') + 1]) if '--threads' in args else 1
    reps = int(args[args.index('--reps') + 1]) if '--reps' in args else 3
    names = [a for i, a in enumerate(args) if not a.startswith('--') and (i == 0 or not args[i - 1].startswith('--'))] or list(STANDINS)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    print(f'torch {torch.__version__}, {threads} thread(s)')
    for name in names:
        cls, size = STANDINS[name]
        model = cls()
        opt = torch.optim.SGD(model.parameters(), lr=1e-5)
        x = torch.randn(8, 3, size, size)
        y = torch.tensor([(j * 37) % 1000 for j in range(8)])
        model.train()

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()

        step()
        ts, ws = [], []
        for _ in range(reps):
            c0, w0 = cpu(), time.perf_counter()
            step()
            ts.append(cpu() - c0)
            ws.append(time.perf_counter() - w0)
        model.eval()
        x1 = x[:1]
        with torch.no_grad():
            for _ in range(2):
                model(x1)
            fs, fw = [], []
            for _ in range(5):
                c0, w0 = cpu(), time.perf_counter()
                model(x1)
                fs.append(cpu() - c0)
                fw.append(time.perf_counter() - w0)
        print(
            f'{name}: train step batch 8 {median(ts):.2f} CPU-s ({median(ws):.2f} s wall); '
            f'forward batch 1 {median(fs) * 1000:.1f} CPU-ms ({median(fw) * 1000:.1f} ms wall)'
        )


if __name__ == '__main__':
    main()
