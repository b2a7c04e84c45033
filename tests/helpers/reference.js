// reference.js: reads the reference cases of ../shared/reference (PyTorch, transformers,
// onnxruntime outputs). The folder sits beside the repository, in development and in CI alike.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const referenceDir = path.resolve(repoRoot, '..', 'shared', 'reference');
const casesDir = path.join(referenceDir, 'cases');

// CI must never skip these: a missing folder is a failure unless ROPE_ALLOW_MISSING_REFERENCE=1.
export function requireReference() {
  if (existsSync(casesDir)) return;
  const message = `reference cases not found at ${casesDir} (the shared/ folder beside the repository)`;
  if (process.env.ROPE_ALLOW_MISSING_REFERENCE === '1') return message;
  throw new Error(message);
}

export function referenceAvailable() {
  return existsSync(casesDir);
}

/** Names of the cases whose name starts with `prefix`, sorted. */
export function caseNames(prefix) {
  if (!existsSync(casesDir)) return [];
  return readdirSync(casesDir)
    .filter((f) => f.endsWith('.json') && f.startsWith(prefix))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

const ARRAY_TYPES = { f32: Float32Array, f64: Float64Array, i32: Int32Array };

/** {params..., arrays: {name: TypedArray}, shapes: {name: number[]}} for one case. */
export function loadCase(name) {
  const meta = JSON.parse(readFileSync(path.join(casesDir, `${name}.json`), 'utf8'));
  const arrays = {};
  const shapes = {};
  for (const a of meta.arrays) {
    const bytes = readFileSync(path.join(casesDir, a.file));
    const Type = ARRAY_TYPES[a.dtype];
    // Copy into an aligned buffer: Buffer slices may start at any byte offset.
    const aligned = new Uint8Array(bytes.length);
    aligned.set(bytes);
    arrays[a.name] = new Type(aligned.buffer);
    shapes[a.name] = a.shape;
  }
  return { ...meta, arrays, shapes };
}
