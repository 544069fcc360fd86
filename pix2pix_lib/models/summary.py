"""Look inside the networks: a layer-by-layer shape table and the PatchGAN's patch geometry.

Introduced in notebook 02 (model architecture). The table is *measured*, not computed: forward
hooks record the tensors that really flow through each block of one example forward pass, so it
cannot drift from the code in generator.py and discriminator.py.

    rows = layer_table(build_generator(image_size=256), torch.zeros(1, 3, 256, 256))
    print(format_table(rows))

One row per paper block: the U-Net's encoder blocks (enc0..), decoder blocks (dec0..) and its
output layer; the PatchGAN's conv layers (each with the norm and activation that follow it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import count_parameters
from .discriminator import PatchDiscriminator, field_of
from .generator import UNetGenerator


@dataclass(frozen=True)
class LayerRow:
    """One block of a network as it ran on an example input."""

    name: str                    # where it lives, e.g. "enc3", "dec0", "to_image", "conv2"
    kind: str                    # the paper's notation, e.g. "C512", "CD512", "ConvT-Tanh"
    in_shape: tuple[int, ...]    # (B, C, H, W) of the tensor that went in
    out_shape: tuple[int, ...]   # (B, C, H, W) of the tensor that came out
    params: int                  # trainable parameters of this block
    note: str = ""               # what is special: "no norm", "+ skip from enc5", "field 70"


def _count(modules: list[nn.Module]) -> int:
    return sum(count_parameters(m) for m in modules)


def _has(module: nn.Module, kind: type) -> bool:
    return any(isinstance(m, kind) for m in module.modules())


def _block_kind(block: nn.Module) -> str:
    """Ck / CDk for one Down/Up block, from the layers it really contains."""
    convs = [m for m in block.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    k = convs[0].out_channels
    return f"CD{k}" if _has(block, nn.Dropout) else f"C{k}"


def _run_with_hooks(model: nn.Module, groups: dict[str, list[nn.Module]], inputs) -> dict[str, tuple]:
    """Run `model(*inputs)` once; return {group: (in_shape, out_shape)} measured by hooks.

    A group's in_shape is the input of its first module, its out_shape the output of its last.
    Runs in eval mode without gradients (no batch-norm statistics are updated), then restores
    the model's mode.
    """
    shapes: dict[str, list] = {name: [None, None] for name in groups}
    handles = []
    for name, modules in groups.items():
        def first_hook(module, args, name=name):
            shapes[name][0] = tuple(args[0].shape)

        def last_hook(module, args, output, name=name):
            shapes[name][1] = tuple(output.shape)

        handles.append(modules[0].register_forward_pre_hook(first_hook))
        handles.append(modules[-1].register_forward_hook(last_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(*inputs)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return {name: (s[0], s[1]) for name, s in shapes.items()}


def _unet_rows(model: UNetGenerator, inputs) -> list[LayerRow]:
    groups = {f"enc{i}": [b] for i, b in enumerate(model.encoder)}
    groups |= {f"dec{j}": [b] for j, b in enumerate(model.decoder)}
    groups["to_image"] = [model.to_image]
    shapes = _run_with_hooks(model, groups, inputs)

    rows = []
    depth = model.depth
    for i, block in enumerate(model.encoder):
        note = "no norm (first layer)" if i == 0 else ("bottleneck, no norm" if i == depth - 1 else "")
        rows.append(LayerRow(f"enc{i}", _block_kind(block), *shapes[f"enc{i}"], _count([block]), note))
    for j, block in enumerate(model.decoder):
        # dec_j's input is dec_{j-1}'s output concatenated with enc_{depth-1-j} (the measured
        # in_shape shows the doubled channels); its own output is later joined with enc_{depth-2-j}.
        note = f"in: dec{j - 1} + skip enc{depth - 1 - j}" if (model.skips and j > 0) else ""
        rows.append(LayerRow(f"dec{j}", _block_kind(block), *shapes[f"dec{j}"], _count([block]), note))
    note = "in: dec{} + skip enc0".format(depth - 2) if model.skips else ""
    rows.append(LayerRow("to_image", "ConvT-Tanh", *shapes["to_image"], _count([model.to_image]), note))
    return rows


def _patchgan_rows(model: PatchDiscriminator, inputs) -> list[LayerRow]:
    # The PatchGAN is one flat Sequential; a "layer" is a conv plus the norm/activation after it.
    layers: list[list[nn.Module]] = []
    for m in model.net:
        if isinstance(m, nn.Conv2d) or not layers:
            layers.append([m])
        else:
            layers[-1].append(m)
    groups = {f"conv{i}": ms for i, ms in enumerate(layers)}
    shapes = _run_with_hooks(model, groups, inputs)

    rows, convs = [], []
    for i, ms in enumerate(layers):
        conv = ms[0]
        convs.append(conv)
        last = i == len(layers) - 1
        kind = "Conv (logits)" if last else f"C{conv.out_channels}"
        normed = any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) for m in ms)
        parts = [f"stride {conv.stride[0]}", f"field {field_of(convs)}"]
        if not last and not normed:
            parts.append("no norm")
        rows.append(LayerRow(f"conv{i}", kind, *shapes[f"conv{i}"], _count(ms), ", ".join(parts)))
    return rows


def layer_table(model: nn.Module, *example_inputs: torch.Tensor) -> list[LayerRow]:
    """The blocks of `model` with the shapes measured on one forward pass of `example_inputs`.

    Parameters:
        model:          a UNetGenerator (or EncoderDecoderGenerator), a PatchDiscriminator, or any
                        module (then one row per direct child module, in registration order)
        example_inputs: what `model(...)` takes: one image batch for a generator, (A, B) for a
                        discriminator. A batch of one is enough; only shapes matter.

    Returns one LayerRow per block; the `params` column sums to `count_parameters(model)`.
    """
    if not example_inputs:
        raise ValueError("layer_table needs the example input(s) the model's forward takes")
    if isinstance(model, UNetGenerator):
        return _unet_rows(model, example_inputs)
    if isinstance(model, PatchDiscriminator):
        return _patchgan_rows(model, example_inputs)
    children = [(name, m) for name, m in model.named_children()]
    if not children:
        raise ValueError(f"{type(model).__name__} has no child modules to tabulate")
    shapes = _run_with_hooks(model, {name: [m] for name, m in children}, example_inputs)
    rows = []
    for name, m in children:
        if shapes[name][1] is None:  # registered but not called by forward
            continue
        rows.append(LayerRow(name, type(m).__name__, *shapes[name], _count([m])))
    return rows


def _shape_text(shape: tuple[int, ...]) -> str:
    # Without the batch dimension: "512 x 1 x 1" reads like the paper's feature maps.
    return " x ".join(str(s) for s in shape[1:])


def format_table(rows: list[LayerRow], *, total: bool = True) -> str:
    """The rows as a fixed-width text table (prints the same in a notebook, a terminal and a test)."""
    header = ("block", "kind", "input (C x H x W)", "output (C x H x W)", "params", "note")
    body = [(r.name, r.kind, _shape_text(r.in_shape), _shape_text(r.out_shape), f"{r.params:,}", r.note)
            for r in rows]
    if total:
        body.append(("total", "", "", "", f"{sum(r.params for r in rows):,}", ""))
    widths = [max(len(line[c]) for line in [header, *body]) for c in range(len(header))]
    right = {4}  # numbers align right

    def fmt(line):
        cells = [cell.rjust(w) if c in right else cell.ljust(w) for c, (cell, w) in enumerate(zip(line, widths))]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [fmt(header), rule, *(fmt(line) for line in body[:len(rows)])]
    if total:
        lines += [rule, fmt(body[-1])]
    return "\n".join(lines)


# --- where a PatchGAN output pixel looks ------------------------------------------------------

def patch_geometry(model: nn.Module) -> tuple[int, int, int]:
    """(field, stride, offset) of a plain conv stack such as the PatchGAN.

    Output pixel (row, col) depends on the input square whose top-left corner is
    (row * stride - offset, col * stride - offset) and whose side is `field`. The offset is the
    padding accumulated through the layers; for the 70x70 PatchGAN: field 70, stride 8, offset 23.
    """
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no Conv2d layers")
    stride, offset = 1, 0
    for conv in convs:  # input -> output: each layer's padding counts in units of the stride so far
        offset += conv.padding[0] * stride
        stride *= conv.stride[0]
    return field_of(convs), stride, offset


def patch_box(model: nn.Module, row: int, col: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) in input pixels of the patch that output pixel (row, col) judges.

    Right and bottom are exclusive. Edge patches reach past the image into the zero padding, so
    the box can start below 0 or end past the image size; clip it to draw it.
    """
    field, stride, offset = patch_geometry(model)
    left, top = col * stride - offset, row * stride - offset
    return left, top, left + field, top + field
