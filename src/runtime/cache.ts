/** A small LRU cache of sessions keyed by (graph key, provider), with explicit disposal. */
import { assert } from "../errors.js";
import type { Provider } from "./providers.js";
import type { Session } from "./session.js";

/**
 * Keeps at most `maxEntries` sessions; the least recently used one is disposed when a new
 * one would exceed the limit. Concurrent requests for one key share one creation. An
 * evicted session is disposed even if a caller still holds it, so keep `maxEntries` at
 * least the number of sessions in use at once (e.g. text encoder + U-Net + VAE = 3).
 */
export class SessionCache {
  private readonly entries = new Map<string, Promise<Session>>();
  private closed = false;

  /** `maxEntries` ≥ 1: how many sessions stay loaded. */
  constructor(readonly maxEntries: number) {
    assert(Number.isInteger(maxEntries) && maxEntries >= 1, `maxEntries must be ≥ 1 (got ${maxEntries})`);
  }

  /** Number of sessions held (including ones still being created). */
  get size(): number {
    return this.entries.size;
  }

  /** True when a session for (graphKey, provider) is held. */
  has(graphKey: string, provider: Provider): boolean {
    return this.entries.has(cacheKey(graphKey, provider));
  }

  /** The cached session for (graphKey, provider), made by `create` on a miss; marks it recently used. */
  getOrCreate(graphKey: string, provider: Provider, create: () => Promise<Session>): Promise<Session> {
    assert(!this.closed, "SessionCache used after dispose()");
    const key = cacheKey(graphKey, provider);
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key); // re-insert: Map order is recency order
      this.entries.set(key, hit);
      return hit;
    }
    const made = create();
    this.entries.set(key, made);
    // A failed creation is forgotten, so the next call retries.
    made.catch(() => {
      if (this.entries.get(key) === made) this.entries.delete(key);
    });
    this.evict();
    return made;
  }

  /** Disposes and forgets the session for (graphKey, provider), if any. */
  async delete(graphKey: string, provider: Provider): Promise<void> {
    const key = cacheKey(graphKey, provider);
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    await disposeEntry(entry);
  }

  /** Disposes every session; the cache cannot be used afterwards. Idempotent. */
  async dispose(): Promise<void> {
    this.closed = true;
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map(disposeEntry));
  }

  private evict(): void {
    while (this.entries.size > this.maxEntries) {
      const [oldest, entry] = this.entries.entries().next().value as [string, Promise<Session>];
      this.entries.delete(oldest);
      // Nobody awaits an eviction, so a failing release has no caller to report to.
      disposeEntry(entry).catch(() => undefined);
    }
  }
}

function cacheKey(graphKey: string, provider: Provider): string {
  return `${provider}\u0000${graphKey}`;
}

/** Disposes a session once it exists; a failed creation has nothing to dispose. */
async function disposeEntry(entry: Promise<Session>): Promise<void> {
  let session: Session;
  try {
    session = await entry;
  } catch {
    return;
  }
  await session.dispose();
}
