// random.js: a small seeded random number generator (splitmix32), so that batches, sampling and
// anything else random in training are reproducible from one integer seed on every engine.

export class SeededRandom {
  #state;

  /** seed: any integer; only its low 32 bits matter. */
  constructor(seed) {
    this.#state = seed >>> 0;
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32() {
    // splitmix32: a 32-bit Weyl sequence through a strong integer hash (MurmurHash3's finaliser).
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** A uniform number in [0, 1) with 53 random bits. */
  nextFloat() {
    const high = this.nextUint32() >>> 5;  // 27 bits
    const low = this.nextUint32() >>> 6;   // 26 bits
    return (high * 67108864 + low) / 9007199254740992;
  }

  /** A uniform integer in [0, n), n <= 2^32, without modulo bias. */
  nextInt(n) {
    if (!(Number.isInteger(n) && n >= 1 && n <= 2 ** 32)) throw new RangeError(`nextInt: n must be an integer in [1, 2^32], got ${n}`);
    // Rejection sampling: drop the top partial block of 2^32 values.
    const limit = 2 ** 32 - (2 ** 32 % n);
    let x;
    do x = this.nextUint32(); while (x >= limit);
    return x % n;
  }

  /** The generator's state, to save in a checkpoint and resume from. */
  get state() {
    return this.#state;
  }

  set state(value) {
    this.#state = value >>> 0;
  }
}
