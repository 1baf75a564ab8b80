import { readFileSync } from "node:fs";
import { openSafetensors } from "./src/io/safetensors.js";
import { loadComponent } from "./src/models/component.js";
import { identityWeights } from "./src/models/weights.js";
import { parseUNetConfig } from "./src/models/unet/config.js";
import { buildUNetGraph } from "./src/models/unet/unet.js";
const G = "/work/shared/golden/";
const c = parseUNetConfig(JSON.parse(readFileSync(G + "tiny/unet/config.json", "utf8")));
const { weights } = await identityWeights(G + "tiny/unet/diffusion_pytorch_model.safetensors");
const names = ["time_proj","time_embedding","conv_in","down_blocks.0","down_blocks.1","mid_block","up_blocks.0","up_blocks.1","conv_norm_out","conv_out"];
let t0 = Date.now();
const graph = await loadComponent("unet", (root) => buildUNetGraph(root, c, { batch: 2, height: 16, width: 16, trace: names }), weights);
console.log("compile ms", Date.now() - t0);
const io = await openSafetensors(G + "tiny/io/unet_io.safetensors");
const sample = await io.readAsFloat32("sample");
const ctx = await io.readAsFloat32("encoder_hidden_states");
for (const tag of ["t10", "t981", "tbatch"]) {
  let ts = await io.readAsFloat32(`${tag}.timestep`);
  if (ts.length === 1) ts = Float32Array.from([ts[0]!, ts[0]!]);
  t0 = Date.now();
  const r = await graph.run({ sample: { dtype: "float32", shape: [2, 4, 16, 16], data: sample }, timestep: { dtype: "float32", shape: [2], data: ts }, encoder_hidden_states: { dtype: "float32", shape: [2, 77, 32], data: ctx } });
  const ms = Date.now() - t0;
  for (const n of ["out", ...names.map((x) => "trace." + x)]) {
    const want = await io.readAsFloat32(n === "out" ? `${tag}.out` : `${tag}.intermediate.${n.slice(6)}`);
    const got = r[n]!.data as Float32Array;
    let m = 0; for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(got[i]! - want[i]!));
    console.log(tag, n, m.toExponential(2), got.length === want.length);
  }
  console.log("run ms", ms);
}
