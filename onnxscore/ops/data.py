"""Data movement, shape logic, containers, random generation and strings: no arithmetic.

Every op here is declared zero-cost with the reason, except ScatterElements/ScatterND whose
``reduction`` attribute combines updates with the data (one FLOP per update). Index
computations (addresses, strides, one-hot positions, masks) are not counted anywhere in
onnxscore, so gathers, slices and layout changes cost 0 whatever their size. Inputs that only
steer the op (shapes, axes, indices, pads, positions) are CONTROL; the data inputs stay DATA so
that a float table gathered from (an embedding) is counted as parameters.
"""
from __future__ import annotations

from onnxscore.ops.registry import CONTROL, Cost, Ctx, rule, zero_cost

# One combine (add, mul, max or min) per update element when ``reduction`` is not "none".
SCATTER_REDUCTION_FLOPS = 1

zero_cost("Reshape", "Squeeze", "Unsqueeze", kind="shape",
          why="changes the shape only; the axes/shape input is CONTROL",
          roles={1: CONTROL})
zero_cost("Flatten", "Identity", kind="shape",
          why="returns its input unchanged or with a new shape")
zero_cost("Transpose", "DepthToSpace", "SpaceToDepth", kind="data",
          why="permutes elements without arithmetic")
zero_cost("Concat", kind="data", why="copies its inputs side by side")
zero_cost("Split", kind="data", why="copies contiguous blocks; the split sizes are CONTROL",
          roles={1: CONTROL})
zero_cost("Slice", kind="data",
          why="copies a strided block; starts/ends/axes/steps are CONTROL",
          roles={1: CONTROL, 2: CONTROL, 3: CONTROL, 4: CONTROL})
zero_cost("Gather", "GatherElements", "GatherND", kind="data",
          why="copies the rows named by the indices (CONTROL); a constant float table gathered "
              "from, such as an embedding, is DATA and counts as parameters",
          roles={1: CONTROL})
zero_cost("Compress", kind="data", why="copies the slices selected by a boolean condition (CONTROL)",
          roles={1: CONTROL})
zero_cost("Scatter", kind="data",
          why="overwrites the elements named by the indices (CONTROL) with the updates",
          roles={1: CONTROL})
zero_cost("TensorScatter", kind="data",
          why="writes the update into the cache at the write indices (CONTROL), a copy",
          roles={2: CONTROL})
zero_cost("Expand", "Tile", kind="data",
          why="repeats elements; the target shape or repeats are CONTROL",
          roles={1: CONTROL})
zero_cost("Pad", kind="data",
          why="copies the input into a larger tensor filled with constant, edge or reflected "
              "values; pads, constant_value and axes are CONTROL",
          roles={1: CONTROL, 2: CONTROL, 3: CONTROL})
zero_cost("CenterCropPad", kind="data", why="crops or pads to a shape (CONTROL), a copy",
          roles={1: CONTROL})
zero_cost("ReverseSequence", kind="data",
          why="reverses prefixes of the given lengths (CONTROL), a copy",
          roles={1: CONTROL})
zero_cost("Trilu", kind="data", why="keeps a triangle and zeroes the rest; k is CONTROL",
          roles={1: CONTROL})
zero_cost("Cast", "BitCast", kind="data", why="converts or reinterprets the element type")
zero_cost("CastLike", kind="data",
          why="converts the element type; the second input only names the type (CONTROL)",
          roles={1: CONTROL})
zero_cost("Dropout", kind="data",
          why="an identity at inference; ratio and training_mode are CONTROL",
          roles={1: CONTROL, 2: CONTROL})
zero_cost("Shape", "Size", kind="shape", why="reads the shape of its input, not its values",
          roles={0: CONTROL})
zero_cost("Constant", kind="constant", why="a stored value; it is counted where it is consumed")
zero_cost("ConstantOfShape", "EyeLike", kind="constant",
          why="fills a tensor of a given shape (CONTROL) with fixed values",
          roles={0: CONTROL})
zero_cost("Range", kind="constant", why="generates an index sequence from scalars (CONTROL)",
          roles={0: CONTROL, 1: CONTROL, 2: CONTROL})
zero_cost("OneHot", kind="constant",
          why="writes on/off values at index positions; depth and values are CONTROL",
          roles={1: CONTROL, 2: CONTROL})
zero_cost("NonZero", "Unique", kind="data",
          why="index and selection logic over the values, no arithmetic")
zero_cost("Optional", "OptionalGetElement", "OptionalHasElement", kind="sequence",
          why="wraps or unwraps an optional value")
zero_cost("SequenceConstruct", "SequenceEmpty", "SequenceLength", "ConcatFromSequence",
          kind="sequence", why="builds, measures or concatenates a sequence of tensors")
zero_cost("SequenceAt", "SequenceErase", kind="sequence",
          why="reads or removes the sequence element at a position (CONTROL)",
          roles={1: CONTROL})
zero_cost("SequenceInsert", kind="sequence",
          why="inserts a tensor at a position (CONTROL)", roles={2: CONTROL})
zero_cost("SplitToSequence", kind="sequence",
          why="splits a tensor into a sequence; the split sizes are CONTROL", roles={1: CONTROL})
# Ops whose output is drawn, not computed: never folded as a constant, whatever their inputs.
RANDOM_OPS = frozenset({"RandomNormal", "RandomUniform", "Bernoulli", "Multinomial", "RandomNormalLike",
                        "RandomUniformLike"})
zero_cost("RandomNormal", "RandomUniform", "Bernoulli", "Multinomial", kind="random",
          why="random generation, not arithmetic on model data")
zero_cost("RandomNormalLike", "RandomUniformLike", kind="random",
          why="random generation; the input only gives the shape (CONTROL)",
          roles={0: CONTROL})
zero_cost("StringConcat", "StringNormalizer", "StringSplit", "RegexFullMatch", kind="string",
          why="string processing, no numeric arithmetic")
zero_cost("ImageDecoder", kind="io", why="decodes an encoded image, input I/O")


@rule("ScatterElements", "ScatterND", kind="data", roles={1: CONTROL})
def scatter(ctx: Ctx) -> Cost:
    """ScatterElements/ScatterND; indices are CONTROL.

    flops = 0 for ``reduction="none"`` (a copy), else numel(updates) * SCATTER_REDUCTION_FLOPS
    (one add, mul, max or min per update).
    """
    if ctx.attr("reduction", "none") == "none":
        return Cost()
    return Cost.of_flops(ctx.in_numel(2) * SCATTER_REDUCTION_FLOPS)
