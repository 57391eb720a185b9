/**
 * The lab's saved run in IndexedDB (database `visbackbones-lab`, store `runs`, key `last`): the
 * trainer checkpoint (safetensors bytes: weights, optimizer moments, step) with what rebuilds the
 * model, so a reload can resume training.
 */
import type { MethodName } from './methods.js';

/** What is saved. */
export interface SavedRun {
  method: MethodName;
  family: string;
  imgSize: number;
  seed: number;
  batchSize: number;
  /** Steps planned for the run (the learning-rate schedule's length) and steps done. */
  totalSteps: number;
  step: number;
  losses: number[];
  /** `Trainer.checkpoint()` bytes. */
  checkpoint: Uint8Array;
  savedAt: string;
}

const DB = 'visbackbones-lab';
const STORE = 'runs';
const KEY = 'last';

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('indexedDB.open failed'));
  });
}

async function tx<T>(mode: IDBTransactionMode, op: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const t = db.transaction(STORE, mode);
      const req = op(t.objectStore(STORE));
      t.oncomplete = () => resolve(req.result);
      t.onerror = () => reject(t.error ?? new Error('IndexedDB transaction failed'));
      t.onabort = () => reject(t.error ?? new Error('IndexedDB transaction aborted'));
    });
  } finally {
    db.close();
  }
}

export function saveRun(run: SavedRun): Promise<IDBValidKey> {
  return tx('readwrite', (s) => s.put(run, KEY));
}

export async function loadRun(): Promise<SavedRun | undefined> {
  return (await tx('readonly', (s) => s.get(KEY))) as SavedRun | undefined;
}

export function clearRun(): Promise<undefined> {
  return tx('readwrite', (s) => s.delete(KEY));
}

/** FNV-1a over bytes, as 8 hex digits: a fingerprint of a state dict's safetensors bytes. */
export function fingerprint(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}
