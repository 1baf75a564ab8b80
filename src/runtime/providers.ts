/**
 * Execution providers: which ones this onnxruntime-node build has, and what to install
 * when one is missing.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { BackendError, InputError } from "../errors.js";

/** An onnxruntime execution provider sdts can run on. */
export type Provider = "cpu" | "webgpu" | "cuda";

/** All providers, in order of preference for display. */
export const PROVIDERS: readonly Provider[] = ["cpu", "webgpu", "cuda"];

/** Availability of one provider; `reason` says what is missing and what to install. */
export type ProviderStatus =
  | { readonly provider: Provider; readonly available: true }
  | { readonly provider: Provider; readonly available: false; readonly reason: string };

/**
 * The shell command that downloads onnxruntime-node's CUDA 12 EP binaries (from nuget.org)
 * into node_modules: see onnxruntime-node/script/install.js. The env var wins over the
 * `onnxruntime-node-install=skip` in our .npmrc; the equivalent npm flag is
 * `npm install onnxruntime-node --onnxruntime-node-install=cuda12`.
 */
export const CUDA_INSTALL_COMMAND = "ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node";

/** Software Vulkan for WebGPU on Linux without a GPU driver (from Debian's `chromium` package). */
export const SWIFTSHADER_ENV =
  "VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json LD_LIBRARY_PATH=/usr/lib/chromium";

/** Shared libraries the CUDA EP needs beside onnxruntime_binding.node; npm does not ship them. */
const CUDA_LIBRARIES = ["libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"];

/** Folder holding onnxruntime_binding.node for this platform. */
function bindingFolder(): string {
  const entry = createRequire(import.meta.url).resolve("onnxruntime-node"); // <pkg>/dist/index.js
  return path.join(path.dirname(entry), "..", "bin", "napi-v6", process.platform, process.arch);
}

/** onnxruntime-node's version string, for messages. */
export function ortVersion(): string {
  return ort.env.versions.node ?? "unknown";
}

/** Parses a provider name from user input (CLI flag, HTTP body, env var). */
export function parseProvider(name: string): Provider {
  if ((PROVIDERS as readonly string[]).includes(name)) return name as Provider;
  throw new InputError(`unknown provider "${name}"; use one of: ${PROVIDERS.join(", ")}`);
}

/** Whether `provider` can be used here, from `listSupportedBackends()` and the files on disk. */
export function providerStatus(provider: Provider): ProviderStatus {
  const backend = ort.listSupportedBackends().find((b) => b.name === provider);
  const platform = `${process.platform}/${process.arch}`;
  if (!backend) {
    const have = ort.listSupportedBackends().map((b) => b.name).join(", ");
    const reason =
      `onnxruntime-node ${ortVersion()} has no "${provider}" provider for ${platform} ` +
      `(it lists: ${have}); use --provider cpu`;
    return { provider, available: false, reason };
  }
  if (backend.bundled) return { provider, available: true };
  // Not bundled (cuda on linux/x64): usable only if install.js downloaded the EP libraries.
  const folder = bindingFolder();
  const missing = CUDA_LIBRARIES.filter((f) => !existsSync(path.join(folder, f)));
  if (provider !== "cuda" || missing.length === 0) return { provider, available: true };
  const reason =
    `provider "cuda" is not installed: onnxruntime-node ${ortVersion()} ships without its CUDA EP ` +
    `binaries (${missing.join(", ")} not found in ${folder}). Install them with ` +
    `\`${CUDA_INSTALL_COMMAND}\` (downloads Microsoft.ML.OnnxRuntime.Gpu.Linux from nuget.org); ` +
    `running also needs the CUDA 12 runtime and cuDNN 9 on the library path. Or use --provider cpu`;
  return { provider, available: false, reason };
}

/** Providers usable here, in PROVIDERS order. WebGPU may still fail at session creation (no adapter). */
export function availableProviders(): Provider[] {
  return PROVIDERS.filter((p) => providerStatus(p).available);
}

/** Throws a BackendError that says what to install when `provider` is not usable here. */
export function requireProvider(provider: Provider, graphName: string): void {
  const status = providerStatus(provider);
  if (!status.available) throw new BackendError(`graph "${graphName}": ${status.reason}`);
}

/** Extra advice for an ORT failure on `provider` (empty when there is none). */
export function providerHint(provider: Provider, ortMessage: string): string {
  if (provider === "webgpu" && /adapter|vulkan|dawn/i.test(ortMessage)) {
    return (
      "WebGPU found no GPU adapter. On Linux it needs a Vulkan loader (libvulkan.so.1) and a " +
      "Vulkan driver (mesa-vulkan-drivers, or the NVIDIA driver's Vulkan ICD); for software " +
      `rendering install chromium and start node with ${SWIFTSHADER_ENV}. Or use --provider cpu`
    );
  }
  if (provider === "cuda" && /shared library|\.so|cuda|cudnn/i.test(ortMessage)) {
    return (
      "The CUDA EP needs an NVIDIA driver, the CUDA 12 runtime (libcudart, libcublas) and cuDNN 9 " +
      "on the library path (LD_LIBRARY_PATH). Or use --provider cpu"
    );
  }
  return "";
}
