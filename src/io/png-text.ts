/**
 * PNG text chunks: A1111-style infotext lives in a `parameters` chunk — tEXt when the text is
 * Latin-1, else iTXt (UTF-8), as PIL's PngInfo writes it. PNG spec: https://www.w3.org/TR/png-3/#11textinfo
 */
import { crc32, inflateSync } from "node:zlib";
import { InputError } from "../errors.js";

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

function be32(n: number): Uint8Array {
  return Uint8Array.of((n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const typed = new Uint8Array(4 + data.length);
  typed.set(Buffer.from(type, "latin1"), 0);
  typed.set(data, 4);
  const out = new Uint8Array(12 + data.length);
  out.set(be32(data.length), 0);
  out.set(typed, 4);
  out.set(be32(crc32(typed) >>> 0), 8 + data.length);
  return out;
}

function isLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 255) return false;
  return true;
}

function checkPng(png: Uint8Array): void {
  if (png.length < 8 || SIGNATURE.some((b, i) => png[i] !== b)) throw new InputError("not a PNG file (bad signature)");
}

/** Returns a copy of `png` with a text chunk `key` = `text` inserted after IHDR. */
export function addPngText(png: Uint8Array, key: string, text: string): Uint8Array {
  checkPng(png);
  const keyBytes = Buffer.from(key, "latin1");
  const body = isLatin1(text)
    ? chunk("tEXt", Buffer.concat([keyBytes, Uint8Array.of(0), Buffer.from(text, "latin1")]))
    : // iTXt: keyword, 0, compression flag 0, method 0, empty language tag, 0, empty translated keyword, 0, UTF-8 text
      chunk("iTXt", Buffer.concat([keyBytes, Uint8Array.of(0, 0, 0, 0, 0), Buffer.from(text, "utf8")]));
  const ihdrEnd = 8 + 12 + ((png[8] ?? 0) << 24 | (png[9] ?? 0) << 16 | (png[10] ?? 0) << 8 | (png[11] ?? 0));
  const out = new Uint8Array(png.length + body.length);
  out.set(png.subarray(0, ihdrEnd), 0);
  out.set(body, ihdrEnd);
  out.set(png.subarray(ihdrEnd), ihdrEnd + body.length);
  return out;
}

/** All tEXt / iTXt / zTXt entries of a PNG, by keyword. */
export function readPngText(png: Uint8Array): Record<string, string> {
  checkPng(png);
  const out: Record<string, string> = {};
  const buf = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  let p = 8;
  while (p + 12 <= buf.length) {
    const len = buf.readUInt32BE(p);
    const type = buf.toString("latin1", p + 4, p + 8);
    if (p + 12 + len > buf.length) break;
    const data = buf.subarray(p + 8, p + 8 + len);
    const z = data.indexOf(0);
    if (z > 0) {
      const key = data.toString("latin1", 0, z);
      if (type === "tEXt") out[key] = data.toString("latin1", z + 1);
      else if (type === "zTXt") out[key] = inflateSync(data.subarray(z + 2)).toString("latin1");
      else if (type === "iTXt") {
        const compressed = data[z + 1] === 1;
        let q = data.indexOf(0, z + 3); // end of language tag
        q = data.indexOf(0, q + 1); // end of translated keyword
        const raw = data.subarray(q + 1);
        out[key] = (compressed ? inflateSync(raw) : raw).toString("utf8");
      }
    }
    if (type === "IEND") break;
    p += 12 + len;
  }
  return out;
}
