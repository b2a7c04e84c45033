// text-data.js: a character-level data set, as the seed's Tiny Shakespeare experiment uses it.
// The vocabulary is the sorted set of characters of the text (token id = index). The first 90% of
// the text trains, the last 10% validates.

/** The fraction of the text that trains; the rest validates. */
export const TRAIN_FRACTION = 0.9;

export class CharDataset {
  #ids;  // character -> token id

  /**
   * text: the whole corpus. vocabulary: optional string of the characters (token id = index), e.g.
   * a checkpoint's; every character of the text must be in it. Default: the text's sorted characters.
   */
  constructor(text, vocabulary) {
    if (typeof text !== 'string') throw new TypeError(`text must be a string, got ${typeof text}`);
    if (text.length < 2) throw new RangeError(`text must have at least 2 characters, got ${text.length}`);
    const chars = vocabulary ?? [...new Set(text)].sort().join('');
    if (typeof chars !== 'string') throw new TypeError('vocabulary must be a string of characters');
    /** The characters, token id = index (a string, so charAt and length work). */
    this.vocabulary = chars;
    this.#ids = new Map([...chars].map((c, i) => [c, i]));
    if (this.#ids.size !== [...chars].length) throw new RangeError('vocabulary has a repeated character');
    /** The whole text as token ids. */
    this.tokens = this.encode(text, 'text');
    const split = Math.floor(this.tokens.length * TRAIN_FRACTION);
    /** Token ids of the training part and of the validation part. */
    this.train = this.tokens.subarray(0, split);
    this.valid = this.tokens.subarray(split);
  }

  get vocabSize() {
    return [...this.vocabulary].length;
  }

  /** String -> Int32Array of token ids; a character outside the vocabulary is a RangeError. */
  encode(text, what = 'text') {
    const out = new Int32Array(text.length);
    let n = 0;
    for (const c of text) {
      const id = this.#ids.get(c);
      if (id === undefined) {
        throw new RangeError(`${what} has the character ${JSON.stringify(c)} (U+${c.codePointAt(0).toString(16).padStart(4, '0')}), which is not in the vocabulary`);
      }
      out[n++] = id;
    }
    return out.slice(0, n);
  }

  /** Token ids -> string. */
  decode(ids) {
    const chars = [...this.vocabulary];
    let s = '';
    for (const id of ids) s += chars[id];
    return s;
  }

  /**
   * `batch` random windows of the training part: tokens [seq, batch] and targets [seq, batch]
   * (targets are the tokens shifted by one), drawn with `random` (a SeededRandom).
   */
  randomBatch(random, seq, batch) {
    const starts = this.train.length - seq - 1;
    if (starts < 1) throw new RangeError(`the training text (${this.train.length} characters) is shorter than seq + 1 = ${seq + 1}`);
    const tokens = new Int32Array(seq * batch);
    const targets = new Int32Array(seq * batch);
    for (let b = 0; b < batch; b++) {
      const start = random.nextInt(starts + 1);
      for (let s = 0; s < seq; s++) {
        tokens[s * batch + b] = this.train[start + s];
        targets[s * batch + b] = this.train[start + s + 1];
      }
    }
    return { tokens, targets };
  }

  /**
   * Every non-overlapping window of `seq` characters of the validation part (the reference's
   * protocol), in batches of at most `batch`: [{tokens, targets, batch}] with [seq, batch] arrays.
   */
  validationBatches(seq, batch) {
    const windows = Math.floor((this.valid.length - 1) / seq);
    if (windows < 1) throw new RangeError(`the validation text (${this.valid.length} characters) is shorter than seq + 1 = ${seq + 1}`);
    const batches = [];
    for (let first = 0; first < windows; first += batch) {
      const count = Math.min(batch, windows - first);
      const tokens = new Int32Array(seq * count);
      const targets = new Int32Array(seq * count);
      for (let b = 0; b < count; b++) {
        const start = (first + b) * seq;
        for (let s = 0; s < seq; s++) {
          tokens[s * count + b] = this.valid[start + s];
          targets[s * count + b] = this.valid[start + s + 1];
        }
      }
      batches.push({ tokens, targets, batch: count });
    }
    return batches;
  }
}
