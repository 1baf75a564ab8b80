/**
 * Images in request bodies (A1111's init_images and mask, the native initImage and mask):
 * base64, optionally as a data URL. Checked here, at the boundary, so a bad image is a 422
 * naming its field rather than a failed job: the text must be base64 and the bytes must start
 * like a PNG, JPEG or WebP file. Decoding the pixels is the library's work.
 */
import { invalid } from "./http.js";

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG = [0xff, 0xd8, 0xff];

function startsWith(b: Uint8Array, sig: readonly number[], at = 0): boolean {
  return sig.every((v, i) => b[at + i] === v);
}

/** True for bytes that start like a PNG, JPEG or WebP file. */
export function looksLikeImage(b: Uint8Array): boolean {
  const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));
  return startsWith(b, PNG) || startsWith(b, JPEG) || (startsWith(b, ascii("RIFF")) && startsWith(b, ascii("WEBP"), 8));
}

/**
 * The bytes of a base64 image (`data:image/…;base64,` prefix allowed, whitespace ignored,
 * standard or URL-safe alphabet). URLs are refused: the server fetches nothing.
 */
export function decodeImageField(value: unknown, field: string, what = "must be"): Uint8Array {
  const hint = "a base64 PNG, JPEG or WebP image (a data:image/png;base64,… URL is fine too)";
  if (typeof value !== "string" || value.trim() === "") throw invalid(field, `${what} ${hint} (got ${value === "" ? "an empty string" : typeof value})`);
  let text = value.trim();
  if (/^https?:\/\//i.test(text)) throw invalid(field, `${what} ${hint}; sdts does not fetch image URLs, send the image itself`);
  const prefix = /^data:([^,]*),/.exec(text);
  if (prefix !== null) {
    if (!/;base64$/i.test(prefix[1] ?? "")) throw invalid(field, `${what} ${hint}; this data URL is not base64-encoded`);
    text = text.slice(prefix[0].length);
  }
  text = text.replace(/\s+/g, "");
  const bad = /[^A-Za-z0-9+/_=-]/.exec(text);
  if (bad !== null || /=[^=]/.test(text) || text.length % 4 === 1) {
    const where = bad ? `: character ${JSON.stringify(bad[0])} at ${bad.index}` : "";
    throw invalid(field, `${what} ${hint}; this is not valid base64${where}`);
  }
  const bytes = new Uint8Array(Buffer.from(text, "base64"));
  if (!looksLikeImage(bytes)) {
    const head = Buffer.from(bytes.subarray(0, 8)).toString("hex");
    throw invalid(field, `${what} ${hint}; the decoded ${bytes.length} bytes are not one (they start with ${head || "nothing"})`);
  }
  return bytes;
}
