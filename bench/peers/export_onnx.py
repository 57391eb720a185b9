"""
Export the peers suite's models to ONNX for onnxruntime-web (`npm run bench -- --peers DIR`).

    python3 bench/peers/export_onnx.py DIR [--check] [model ...]

Writes `DIR/<model>.onnx` (input `input`: float32 NCHW with a dynamic batch; output `logits`; opset 17).
The model is `timm.create_model(name)` where timm is installed, else the plain-PyTorch stand-in of
`standins.py`. With `--check`, the weights come from `DIR/<model>.safetensors` written by
`bench/peers/writeCheck.ts` (visbackbones' own, loaded strictly), and the model's logits for
`DIR/<model>.input.f32` must match visbackbones' `DIR/<model>.logits.f32` (max abs error printed; it
fails above 1e-3): the exported network is then the one the suite times on our side.
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standins import STANDINS  # noqa: E402


def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == '__metadata__':
            continue
        assert v['dtype'] == 'F32', f'{k}: {v["dtype"]}'
        a, b = v['data_offsets']
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=np.float32).copy().reshape(v['shape']))
    return out


def build(name):
    try:
        import timm  # noqa: F401

        return timm.create_model(name), 'timm ' + timm.__version__
    except ImportError:
        cls, _ = STANDINS[name]
        return cls(), 'stand-in (standins.py)'


def main():
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    check = '--check' in sys.argv
    if not args:
        sys.exit(__doc__)
    out_dir, names = args[0], args[1:] or list(STANDINS)
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    for name in names:
        size = STANDINS[name][1]
        model, source = build(name)
        model.eval()
        if check:
            sd = read_safetensors(os.path.join(out_dir, f'{name}.safetensors'))
            model.load_state_dict(sd, strict=True)
            x = torch.from_numpy(np.fromfile(os.path.join(out_dir, f'{name}.input.f32'), dtype=np.float32).reshape(2, 3, size, size))
            ref = torch.from_numpy(np.fromfile(os.path.join(out_dir, f'{name}.logits.f32'), dtype=np.float32).reshape(2, -1))
            with torch.no_grad():
                err = (model(x) - ref).abs().max().item()
            print(f'{name} ({source}): max |logits - visbackbones| = {err:.3g}')
            if not err <= 1e-3:
                sys.exit(f'{name}: the exported model does not compute what visbackbones computes')
        path = os.path.join(out_dir, f'{name}.onnx')
        with torch.no_grad():
            torch.onnx.export(
                model,
                torch.zeros(1, 3, size, size),
                path,
                opset_version=17,
                input_names=['input'],
                output_names=['logits'],
                dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}},
            )
        print(f'{name}: {path} ({os.path.getsize(path) / 2**20:.1f} MiB, {source})')


if __name__ == '__main__':
    main()
