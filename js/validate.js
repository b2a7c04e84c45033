// validate.js: argument checks shared by the classes. Each throws a TypeError (wrong kind of
// value) or RangeError (right kind, wrong value) whose message names the parameter.

/** Throws a TypeError for any key of `options` that is not in `known`. */
export function checkOptions(options, known, what) {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${what}: options must be an object`);
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new TypeError(`${what}: unknown option '${key}' (known: ${known.join(', ')})`);
    }
  }
  return options;
}

/** A finite number; RangeError when NaN or infinite, TypeError when not a number. */
export function finiteNumber(value, name) {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${describe(value)}`);
  if (!Number.isFinite(value)) throw new RangeError(`${name} must be finite, got ${value}`);
  return value;
}

export function positiveNumber(value, name) {
  finiteNumber(value, name);
  if (value <= 0) throw new RangeError(`${name} must be > 0, got ${value}`);
  return value;
}

/** An integer in [min, max]. */
export function integer(value, name, min = -(2 ** 31), max = 2 ** 31 - 1) {
  if (typeof value !== 'number') throw new TypeError(`${name} must be an integer, got ${describe(value)}`);
  if (!Number.isInteger(value)) throw new RangeError(`${name} must be an integer, got ${value}`);
  if (value < min || value > max) throw new RangeError(`${name} must be in [${min}, ${max}], got ${value}`);
  return value;
}

export function oneOf(value, name, allowed) {
  if (!allowed.includes(value)) {
    const kind = typeof value === 'string' ? RangeError : TypeError;
    throw new kind(`${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(value)}`);
  }
  return value;
}

export function boolean(value, name) {
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${describe(value)}`);
  return value;
}

/** An array-like of `length` positive finite numbers, as a Float64Array. */
export function positiveNumbers(value, name, length) {
  if (value === null || typeof value !== 'object' || typeof value.length !== 'number') {
    throw new TypeError(`${name} must be an array of ${length} numbers, got ${describe(value)}`);
  }
  if (value.length !== length) throw new RangeError(`${name} must have length ${length}, got ${value.length}`);
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) out[i] = positiveNumber(value[i], `${name}[${i}]`);
  return out;
}

/** Positions as an Int32Array: an Int32Array as is, or an array-like of int32 integers. */
export function int32Positions(value, name) {
  if (value instanceof Int32Array) return value;
  if (value === null || typeof value !== 'object' || typeof value.length !== 'number') {
    throw new TypeError(`${name} must be an Int32Array or an array of integers, got ${describe(value)}`);
  }
  const out = new Int32Array(value.length);
  for (let i = 0; i < value.length; i++) out[i] = integer(value[i], `${name}[${i}]`);
  return out;
}

export function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of length ${value.length}`;
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'object') return `a ${value.constructor?.name ?? 'object'}`;
  return String(value);
}
