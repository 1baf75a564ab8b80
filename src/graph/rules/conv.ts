/** 2-D convolution and transposed convolution (NCHW, groups, dilation, asymmetric pads). */
import { ShapeError, assert } from "../../errors.js";
import { apply1, constant } from "../apply.js";
import type { ConvAttrs, OpAttrs } from "../op.js";
import { Op } from "../op.js";
import * as g from "../ops.js";
import type { Grads, OnnxAttrValue, RuleTable, TensorType, Value } from "../rule.js";
import type { Dim } from "../shape.js";
import { dimDivide, dimEq, dimProduct, fmtShape, isConcrete, numel } from "../shape.js";
import type { Node, Tensor } from "../tensor.js";
import { adjointOutputPadding, axisAttrs, checkConvAttrs, convOutDim, convTransposeOutDim } from "./conv-dims.js";
import { zeros } from "./indexing.js";
import { arity, needFloat, needRank, roundAll, sameDtype } from "./util.js";

type Dims4 = [number, number, number, number];
type ConvTAttrs = OpAttrs[Op.ConvTranspose];

/** Checks arity, dtypes and ranks of (x, w, bias?); returns the dtype. */
function checkOperands(inputs: readonly TensorType[], weightLayout: string): TensorType["dtype"] {
  arity(inputs, 2, 3);
  const dtype = sameDtype(inputs);
  needFloat(inputs[0] as TensorType, "x");
  needRank(inputs[0] as TensorType, 4, "x [N,C,H,W]");
  needRank(inputs[1] as TensorType, 4, `weight ${weightLayout}`);
  return dtype;
}

function checkBias(b: TensorType | undefined, outChannels: Dim): void {
  if (b !== undefined && (b.shape.length !== 1 || !dimEq(b.shape[0] as Dim, outChannels))) {
    throw new ShapeError(`bias must have shape [${outChannels}] (one per output channel), got ${fmtShape(b.shape)}`);
  }
}

function inferConv(inputs: readonly TensorType[], a: ConvAttrs): TensorType[] {
  const dtype = checkOperands(inputs, "[O,C/group,kh,kw]");
  checkConvAttrs(a);
  const [x, w, b] = inputs as [TensorType, TensorType, TensorType | undefined];
  const [o, cg, kh, kw] = w.shape as [Dim, Dim, Dim, Dim];
  const [n, c, h, wd] = x.shape as [Dim, Dim, Dim, Dim];
  if (!dimEq(c, dimProduct([cg, a.group]))) {
    throw new ShapeError(`x has ${c} channels but weight ${fmtShape(w.shape)} with group ${a.group} expects ${cg}·${a.group}`);
  }
  if (dimDivide(o, a.group) === undefined) throw new ShapeError(`output channels ${o} (weight dim 0) must divide by group ${a.group}`);
  checkBias(b, o);
  const oh = convOutDim(h, kh, axisAttrs(a, 0), 0);
  const ow = convOutDim(wd, kw, axisAttrs(a, 1), 1);
  return [{ dtype, shape: [n, o, oh, ow] }];
}

function inferConvTranspose(inputs: readonly TensorType[], a: ConvTAttrs): TensorType[] {
  const dtype = checkOperands(inputs, "[C,O/group,kh,kw]");
  checkConvAttrs(a);
  const [x, w, b] = inputs as [TensorType, TensorType, TensorType | undefined];
  const [cw, og, kh, kw] = w.shape as [Dim, Dim, Dim, Dim];
  const [n, c, h, wd] = x.shape as [Dim, Dim, Dim, Dim];
  const o = dimProduct([og, a.group]);
  if (!dimEq(c, cw)) throw new ShapeError(`x has ${c} channels but weight ${fmtShape(w.shape)} expects ${cw} (weight dim 0)`);
  if (dimDivide(c, a.group) === undefined) throw new ShapeError(`input channels ${c} must divide by group ${a.group}`);
  checkBias(b, o);
  // ONNX allows outputPadding < max(stride, dilation), but onnxruntime refuses anything ≥ stride.
  a.outputPadding.forEach((p, i) => {
    if (a.outputPadding.length !== 2 || !Number.isInteger(p) || p < 0 || p >= (a.strides[i] ?? 1)) {
      throw new ShapeError(`outputPadding must be two integers in [0, stride), got [${a.outputPadding.join(",")}] with strides [${a.strides.join(",")}]`);
    }
  });
  const oh = convTransposeOutDim(h, kh, axisAttrs(a, 0), a.outputPadding[0], 0);
  const ow = convTransposeOutDim(wd, kw, axisAttrs(a, 1), a.outputPadding[1], 1);
  return [{ dtype, shape: [n, o, oh, ow] }];
}

/** ONNX attributes shared by Conv and ConvTranspose; kernel_shape only when concrete (ONNX reads it off the weight otherwise). */
function onnxConvAttrs(a: ConvAttrs, w: Tensor): Record<string, OnnxAttrValue> {
  const attrs: Record<string, OnnxAttrValue> = {
    strides: [...a.strides],
    pads: [...a.pads],
    dilations: [...a.dilations],
    group: a.group,
  };
  const k = w.shape.slice(2);
  if (isConcrete(k)) attrs.kernel_shape = k;
  return attrs;
}

/** Direct convolution: every output sums its group's channels under the (dilated, strided) kernel. */
function evalConv(v: readonly Value[], a: ConvAttrs, outShape: readonly number[]): Float64Array {
  const [x, w, b] = v as [Value, Value, Value | undefined];
  const [N, C, H, W] = x.shape as Dims4;
  const [O, Cg, KH, KW] = w.shape as Dims4;
  const [, , OH, OW] = outShape as Dims4;
  const [sh, sw] = a.strides;
  const [dh, dw] = a.dilations;
  const [pt, pl] = a.pads;
  const og = O / a.group;
  const out = new Float64Array(numel(outShape));
  let f = 0;
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const c0 = Math.floor(o / og) * Cg;
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          let acc = b?.data[o] ?? 0;
          for (let c = 0; c < Cg; c++) {
            for (let i = 0; i < KH; i++) {
              const ih = oh * sh - pt + i * dh;
              if (ih < 0 || ih >= H) continue;
              for (let j = 0; j < KW; j++) {
                const iw = ow * sw - pl + j * dw;
                if (iw < 0 || iw >= W) continue;
                acc += (x.data[((n * C + c0 + c) * H + ih) * W + iw] ?? 0) * (w.data[((o * Cg + c) * KH + i) * KW + j] ?? 0);
              }
            }
          }
          out[f++] = acc;
        }
      }
    }
  }
  return roundAll(x.dtype, out);
}

/** Transposed convolution as a scatter: each input pixel adds weight·x into the outputs its kernel covers. */
function evalConvTranspose(v: readonly Value[], a: ConvAttrs, outShape: readonly number[]): Float64Array {
  const [x, w, b] = v as [Value, Value, Value | undefined];
  const [N, C, H, W] = x.shape as Dims4;
  const [, Og, KH, KW] = w.shape as Dims4;
  const [, O, OH, OW] = outShape as Dims4;
  const [sh, sw] = a.strides;
  const [dh, dw] = a.dilations;
  const [pt, pl] = a.pads;
  const cg = C / a.group;
  const out = new Float64Array(numel(outShape));
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) out.fill(b?.data[o] ?? 0, (n * O + o) * OH * OW, (n * O + o + 1) * OH * OW);
    for (let c = 0; c < C; c++) {
      const o0 = Math.floor(c / cg) * Og;
      for (let ih = 0; ih < H; ih++) {
        for (let iw = 0; iw < W; iw++) {
          const xv = x.data[((n * C + c) * H + ih) * W + iw] ?? 0;
          for (let o = 0; o < Og; o++) {
            for (let i = 0; i < KH; i++) {
              const oh = ih * sh - pt + i * dh;
              if (oh < 0 || oh >= OH) continue;
              for (let j = 0; j < KW; j++) {
                const ow = iw * sw - pl + j * dw;
                if (ow < 0 || ow >= OW) continue;
                const k = ((n * O + o0 + o) * OH + oh) * OW + ow;
                out[k] = (out[k] ?? 0) + xv * (w.data[((c * Og + o) * KH + i) * KW + j] ?? 0);
              }
            }
          }
        }
      }
    }
  }
  return roundAll(x.dtype, out);
}

/** Crops the spatial dims of t [.., .., ≥h, ≥w] to h × w (a no-op when they already match). */
function cropTo(t: Tensor, h: Dim, w: Dim): Tensor {
  const [th, tw] = t.shape.slice(2) as [Dim, Dim];
  if (dimEq(th, h) && dimEq(tw, w)) return t;
  assert(typeof h === "number" && typeof w === "number", () => `cannot crop ${t.typeString} to symbolic ${h}×${w}`);
  return g.slice(t, [2, 3], [0, 0], [h, w]);
}

/**
 * Weight gradient as one grouped convolution over the batch: correlates inp [N, g·P, H, W] with
 * ker [N, Q, Hk, Wk] (Q = g·Qg), summing over N and space, → [Q, P, kh, kw].
 * Strides and dilations swap roles: the kernel (ker) now steps by the old stride inside the input.
 */
function correlate(inp: Tensor, ker: Tensor, a: ConvAttrs, kh: Dim, kw: Dim): Tensor {
  const grp = a.group;
  const [n, c, h, w] = inp.shape as [Dim, Dim, Dim, Dim];
  const p = dimDivide(c, grp);
  assert(p !== undefined, "channels divide by group");
  // [N, g·P, H, W] → [P, g·N, H, W]: batch P, channels grouped like the weight's groups.
  const it =
    grp === 1
      ? g.transpose(inp, [1, 0, 2, 3])
      : g.reshape(g.transpose(g.reshape(inp, [n, grp, p, h, w]), [2, 1, 0, 3, 4]), [p, dimProduct([grp, n]), h, w]);
  const kt = g.transpose(ker, [1, 0, 2, 3]); // [Q, N, Hk, Wk]
  const attrs: ConvAttrs = { strides: a.dilations, pads: a.pads, dilations: a.strides, group: grp };
  const y = cropTo(apply1(Op.Conv, [it, kt], attrs), kh, kw); // [P, Q, kh, kw]
  return g.transpose(y, [1, 0, 2, 3]);
}

/** Bias gradient: Σ of gy [N, O, H, W] over N, H, W. */
const biasGrad = (gy: Tensor): Tensor => g.reduceSum(gy, [0, 2, 3]);

const concreteDims = (t: Tensor): t is Tensor & { shape: number[] } => isConcrete(t.shape);

/** x [A, B, H, W] with zero rows/columns added around the spatial dims (pads [top, left, bottom, right]). */
function padSpatial(x: Tensor & { shape: number[] }, pads: readonly number[]): Tensor {
  const [a, b, h, w] = x.shape as Dims4;
  const [pt = 0, pl = 0, pb = 0, pr = 0] = pads;
  let r: Tensor = x;
  if (pt + pb > 0) r = g.concat([...(pt > 0 ? [zeros([a, b, pt, w], x.dtype)] : []), r, ...(pb > 0 ? [zeros([a, b, pb, w], x.dtype)] : [])], 2);
  const hp = h + pt + pb;
  if (pl + pr > 0) r = g.concat([...(pl > 0 ? [zeros([a, b, hp, pl], x.dtype)] : []), r, ...(pr > 0 ? [zeros([a, b, hp, pr], x.dtype)] : [])], 3);
  return r;
}

/** Largest patch matrix (C·kh·kw × N·OH·OW floats) the GEMM weight gradient builds: 256 MB of float32. */
const MAX_PATCH_ELEMENTS = 64 * 2 ** 20;

const patchElements = (x: Tensor & { shape: number[] }, gy: Tensor, kh: number, kw: number): number =>
  (x.shape[1] as number) * kh * kw * (x.shape[0] as number) * numel(gy.shape.slice(2) as number[]);

/** Input channels from which the weight gradient takes one product per kernel tap instead of one over the stacked patches. */
const PER_TAP_MIN_CHANNELS = 16;

/**
 * Weight gradient of an ungrouped conv as GEMMs over explicit patches (im2col):
 * gw[o, c, i, j] = Σ over n and output pixels p of gy[n, o, p] · patch_ij[c, n, p].
 * The patches are the left, untransposed operand, so the GEMM reads them in place and packs only
 * gy; from PER_TAP_MIN_CHANNELS input channels each tap is its own product [C, N·P] × [N·P, O],
 * and the kh·kw-fold patch matrix is never stacked (bench: 10–30% less time than one GEMM over
 * the stacked patches as the right operand, which MLAS copies whole to pack it).
 * onnxruntime runs the equivalent batch-correlation Conv (kernel = the whole output map) at a
 * tenth of its GEMM speed, and this is the bulk of a training step's convolution time.
 */
function weightGradGemm(x: Tensor & { shape: number[] }, gy: Tensor & { shape: number[] }, a: ConvAttrs, kh: number, kw: number): Tensor {
  const [n, c] = x.shape as Dims4;
  const [, o, oh, ow] = gy.shape as Dims4;
  const [sh, sw] = a.strides;
  const [dh, dw] = a.dilations;
  const rows = n * oh * ow;
  const xp = padSpatial(g.transpose(x, [1, 0, 2, 3]) as Tensor & { shape: number[] }, a.pads); // [C, N, H', W']
  const patches: Tensor[] = []; // [C, N·OH·OW] each
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const p = g.slice(xp, [2, 3], [i * dh, j * dw], [i * dh + sh * (oh - 1) + 1, j * dw + sw * (ow - 1) + 1], [sh, sw]);
      patches.push(g.reshape(p, [c, rows]));
    }
  }
  const gyCols = g.transpose(g.reshape(g.transpose(gy, [1, 0, 2, 3]), [o, rows]), [1, 0]); // [N·OH·OW, O]
  if (patches.length > 1 && c >= PER_TAP_MIN_CHANNELS) {
    const taps = patches.map((p) => g.unsqueeze(g.matmul(p, gyCols), [2])); // [C, O, 1] each
    return g.reshape(g.transpose(g.concat(taps, 2), [1, 0, 2]), [o, c, kh, kw]);
  }
  const cols = patches.length === 1 ? (patches[0] as Tensor) : g.reshape(g.concat(patches.map((p) => g.unsqueeze(p, [1])), 1), [c * kh * kw, rows]);
  return g.reshape(g.transpose(g.matmul(cols, gyCols), [1, 0]), [o, c, kh, kw]);
}

/**
 * Input gradient of an ungrouped stride-1 conv as a conv (no transposed conv): gy correlated with
 * the spatially flipped kernel, channels swapped, padded by dilation·(k − 1) − pad on each side.
 * Undefined when a pad exceeds dilation·(k − 1) (the adjoint would need cropping).
 */
function inputGradConv(gy: Tensor, w: Tensor & { shape: number[] }, a: ConvAttrs): Tensor | undefined {
  const [, , kh, kw] = w.shape as Dims4;
  const [dh, dw] = a.dilations;
  const [pt, pl, pb, pr] = a.pads as Dims4;
  const pads: Dims4 = [dh * (kh - 1) - pt, dw * (kw - 1) - pl, dh * (kh - 1) - pb, dw * (kw - 1) - pr];
  if (pads.some((p) => p < 0)) return undefined;
  const reversed = (k: number) => constant(Array.from({ length: k }, (_, i) => k - 1 - i), [k], "int64");
  let wf: Tensor = w;
  if (kh > 1) wf = g.gather(wf, reversed(kh), 2);
  if (kw > 1) wf = g.gather(wf, reversed(kw), 3);
  return apply1(Op.Conv, [gy, g.transpose(wf, [1, 0, 2, 3])], { strides: [1, 1], pads, dilations: a.dilations, group: 1 });
}

function convVjp(node: Node<Op.Conv>, [gy]: readonly (Tensor | undefined)[]): Grads {
  if (gy === undefined) return node.inputs.map(() => undefined);
  const [x, w, b] = node.inputs as [Tensor, Tensor, Tensor | undefined];
  const a = node.attrs;
  const [, , h, wd] = x.shape as [Dim, Dim, Dim, Dim];
  const [, , kh, kw] = w.shape as [Dim, Dim, Dim, Dim];
  const plain = a.group === 1 && concreteDims(w);
  let gx = plain && a.strides[0] === 1 && a.strides[1] === 1 ? inputGradConv(gy, w, a) : undefined;
  // The adjoint of a strided conv is a transposed conv; outputPadding restores the rows the stride dropped.
  gx ??= apply1(Op.ConvTranspose, [gy, w], { ...a, outputPadding: [adjointOutputPadding(h, kh, axisAttrs(a, 0)), adjointOutputPadding(wd, kw, axisAttrs(a, 1))] });
  const gemm = plain && concreteDims(x) && concreteDims(gy) && patchElements(x, gy, kh as number, kw as number) <= MAX_PATCH_ELEMENTS;
  const gw = gemm ? weightGradGemm(x, gy as Tensor & { shape: number[] }, a, kh as number, kw as number) : correlate(x, gy, a, kh, kw);
  return b === undefined ? [gx, gw] : [gx, gw, biasGrad(gy)];
}

function convTransposeVjp(node: Node<Op.ConvTranspose>, [gy]: readonly (Tensor | undefined)[]): Grads {
  if (gy === undefined) return node.inputs.map(() => undefined);
  const [x, w, b] = node.inputs as [Tensor, Tensor, Tensor | undefined];
  const { strides, pads, dilations, group } = node.attrs;
  const a: ConvAttrs = { strides, pads, dilations, group };
  const [, , kh, kw] = w.shape as [Dim, Dim, Dim, Dim];
  // Conv is the adjoint; with outputPadding < stride it gives back exactly H × W.
  const gx = apply1(Op.Conv, [gy, w], a);
  const gw = correlate(gy, x, a, kh, kw);
  return b === undefined ? [gx, gw] : [gx, gw, biasGrad(gy)];
}

/** Rules of Conv and ConvTranspose. */
export const CONV_RULES: RuleTable<Op.Conv | Op.ConvTranspose> = {
  [Op.Conv]: {
    infer: inferConv,
    lower: (ctx, n, ins, outs) => ctx.emit("Conv", ins, outs, onnxConvAttrs(n.attrs, n.inputs[1] as Tensor)),
    evaluate: (v, a, [s]) => [evalConv(v, a, s ?? [])],
    vjp: convVjp,
  },
  [Op.ConvTranspose]: {
    infer: inferConvTranspose,
    lower: (ctx, n, ins, outs) => {
      const attrs = { ...onnxConvAttrs(n.attrs, n.inputs[1] as Tensor), output_padding: [...n.attrs.outputPadding] };
      ctx.emit("ConvTranspose", ins, outs, attrs);
    },
    evaluate: (v, a, [s]) => [evalConvTranspose(v, a, s ?? [])],
    vjp: convTransposeVjp,
  },
};
