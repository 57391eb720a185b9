"""
Stand-ins for three timm models, in plain PyTorch (1.13 or later), for machines without timm: the same
modules, parameter names (timm's state-dict keys) and forward as timm 1.0's `vit_small_patch16_224`,
`convnextv2_atto` and `swinv2_tiny_window8_256`, written for export to ONNX. `export_onnx.py` uses timm
itself when it is installed; it checks a stand-in against visbackbones' output for the same weights
before exporting it.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- ViT


class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class VitBlock(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * 4)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch, in_chans, dim, norm=False):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, patch, patch)
        self.norm = nn.LayerNorm(dim) if norm else nn.Identity()

    def forward(self, x):  # NCHW -> NHWC
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class VisionTransformer(nn.Module):
    def __init__(self, img_size=224, patch=16, dim=384, depth=12, num_heads=6, num_classes=1000):
        super().__init__()
        self.patch_embed = PatchEmbed(patch, 3, dim)
        n = (img_size // patch) ** 2
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 1e-6)
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[VitBlock(dim, num_heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


# ---------------------------------------------------------------- ConvNeXt V2


class LayerNorm2d(nn.LayerNorm):
    def forward(self, x):  # NCHW
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class GlobalResponseNorm(nn.Module):
    """timm's GRN, channels first (NCHW), as convnextv2_* build it (conv_mlp=True)."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        g = x.norm(p=2, dim=(2, 3), keepdim=True)
        n = g / (g.mean(dim=1, keepdim=True) + self.eps)
        return x + torch.addcmul(self.bias.view(1, -1, 1, 1), self.weight.view(1, -1, 1, 1), x * n)


class GrnMlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.GELU()
        self.grn = GlobalResponseNorm(hidden)
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x):
        return self.fc2(self.grn(self.act(self.fc1(x))))


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv_dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.mlp = GrnMlp(dim, dim * 4)

    def forward(self, x):  # NCHW, conv_mlp
        return x + self.mlp(self.norm(self.conv_dw(x)))


class ConvNeXtStage(nn.Module):
    def __init__(self, cin, cout, depth, downsample):
        super().__init__()
        self.downsample = nn.Sequential(LayerNorm2d(cin, eps=1e-6), nn.Conv2d(cin, cout, 2, 2)) if downsample else nn.Identity()
        self.blocks = nn.Sequential(*[ConvNeXtBlock(cout) for _ in range(depth)])

    def forward(self, x):
        return self.blocks(self.downsample(x))


class NormHead(nn.Module):
    def __init__(self, dim, num_classes):
        super().__init__()
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x):
        return self.fc(self.norm(x.mean(dim=(2, 3), keepdim=True)).flatten(1))


class ConvNeXt(nn.Module):
    def __init__(self, depths=(2, 2, 6, 2), dims=(40, 80, 160, 320), num_classes=1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), LayerNorm2d(dims[0], eps=1e-6))
        cin = dims[0]
        stages = []
        for i, (d, c) in enumerate(zip(depths, dims)):
            stages.append(ConvNeXtStage(cin, c, d, i > 0))
            cin = c
        self.stages = nn.Sequential(*stages)
        self.head = NormHead(dims[-1], num_classes)

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))


# ---------------------------------------------------------------- Swin V2


def window_partition(x, ws):
    B, H, W, C = x.shape
    x = x.view(B, H // ws, ws, W // ws, ws, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, C)


def window_reverse(w, ws, H, W):
    C = w.shape[-1]
    x = w.view(-1, H // ws, W // ws, ws, ws, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, H, W, C)


class WindowAttentionV2(nn.Module):
    def __init__(self, dim, ws, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones((num_heads, 1, 1))))
        self.cpb_mlp = nn.Sequential(nn.Linear(2, 512), nn.ReLU(inplace=True), nn.Linear(512, num_heads, bias=False))
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer('k_bias', torch.zeros(dim), persistent=False)
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)
        r = torch.arange(-(ws - 1), ws, dtype=torch.float32)
        table = torch.stack(torch.meshgrid(r, r, indexing='ij')).permute(1, 2, 0).unsqueeze(0) / (ws - 1) * 8
        table = torch.sign(table) * torch.log2(torch.abs(table) + 1.0) / math.log2(8)
        self.register_buffer('relative_coords_table', table, persistent=False)
        c = torch.arange(ws)
        coords = torch.flatten(torch.stack(torch.meshgrid(c, c, indexing='ij')), 1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
        rel[:, :, 0] += ws - 1
        rel[:, :, 1] += ws - 1
        rel[:, :, 0] *= 2 * ws - 1
        self.register_buffer('relative_position_index', rel.sum(-1).view(-1), persistent=False)

    def forward(self, x, mask=None):
        B_, N, C = x.shape
        bias = torch.cat((self.q_bias, self.k_bias, self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(B_, N, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        attn = attn * torch.clamp(self.logit_scale, max=math.log(1.0 / 0.01)).exp()
        table = self.cpb_mlp(self.relative_coords_table).view(-1, self.num_heads)
        rpb = table[self.relative_position_index].view(N, N, -1).permute(2, 0, 1)
        attn = attn + 16 * torch.sigmoid(rpb).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(-1, nw, self.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.num_heads, N, N)
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(B_, N, -1)
        return self.proj(x)


class SwinV2Block(nn.Module):
    def __init__(self, dim, res, num_heads, ws, shift):
        super().__init__()
        if res <= ws:
            ws, shift = res, 0
        self.ws, self.shift = ws, shift
        self.attn = WindowAttentionV2(dim, ws, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, dim * 4)
        self.norm2 = nn.LayerNorm(dim)
        if shift:
            img = torch.zeros(1, res, res, 1)
            cnt = 0
            for h in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
                for w in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
                    img[:, h, w, :] = cnt
                    cnt += 1
            mw = window_partition(img, ws).squeeze(-1)
            m = mw.unsqueeze(1) - mw.unsqueeze(2)
            m = m.masked_fill(m != 0, -100.0).masked_fill(m == 0, 0.0)
        else:
            m = None
        self.register_buffer('attn_mask', m, persistent=False)

    def _attn(self, x):
        B, H, W, C = x.shape
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        w = self.attn(window_partition(x, self.ws), self.attn_mask)
        x = window_reverse(w, self.ws, H, W)
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        return x

    def forward(self, x):
        B, H, W, C = x.shape
        x = x + self.norm1(self._attn(x))
        x = x.reshape(B, -1, C)
        x = x + self.norm2(self.mlp(x))
        return x.reshape(B, H, W, C)


class PatchMerging(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(2 * dim)

    def forward(self, x):
        B, H, W, C = x.shape
        x = x.reshape(B, H // 2, 2, W // 2, 2, C).permute(0, 1, 3, 4, 2, 5).flatten(3)
        return self.norm(self.reduction(x))


class SwinV2Stage(nn.Module):
    def __init__(self, dim, out_dim, res, depth, num_heads, ws, downsample):
        super().__init__()
        self.downsample = PatchMerging(dim) if downsample else nn.Identity()
        self.blocks = nn.Sequential(
            *[SwinV2Block(out_dim, res, num_heads, ws, 0 if i % 2 == 0 else ws // 2) for i in range(depth)]
        )

    def forward(self, x):
        return self.blocks(self.downsample(x))


class SwinTransformerV2(nn.Module):
    def __init__(self, img_size=256, ws=8, dim=96, depths=(2, 2, 6, 2), heads=(3, 6, 12, 24), num_classes=1000):
        super().__init__()
        self.patch_embed = PatchEmbed(4, 3, dim, norm=True)
        res = img_size // 4
        layers = []
        d = dim
        for i, (depth, h) in enumerate(zip(depths, heads)):
            out = dim * 2**i
            layers.append(SwinV2Stage(d, out, res // 2**i, depth, h, ws, i > 0))
            d = out
        self.layers = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Module()
        self.head.fc = nn.Linear(d, num_classes)

    def forward(self, x):
        x = self.norm(self.layers(self.patch_embed(x)))
        return self.head.fc(x.mean(dim=(1, 2)))


STANDINS = {
    'vit_small_patch16_224': (VisionTransformer, 224),
    'convnextv2_atto': (ConvNeXt, 224),
    'swinv2_tiny_window8_256': (SwinTransformerV2, 256),
}
