// errors.js: turns a C status code (c/rope_errors.h) into the JavaScript error it stands for.
// The JS layer validates every argument first, so these are a second line of defence; only
// out-of-memory is expected to come from C.

const STATUS = {
  [-1]: [TypeError, 'a required pointer was null'],
  [-2]: [RangeError, 'dim must be even, positive and at most head_dim'],
  [-3]: [RangeError, 'base must be a finite number > 0'],
  [-4]: [TypeError, 'unknown pairing'],
  [-5]: [RangeError, 'bad scaling parameter'],
  [-6]: [TypeError, 'unknown layout'],
  [-7]: [RangeError, 'shape sizes must be non-negative and their product must fit in memory'],
  [-8]: [RangeError, 'positions must have length seq or batch*seq, and offset + seq must fit in int32'],
  [-9]: [RangeError, 'not enough WebAssembly memory'],
  [-10]: [RangeError, 'heads must be a multiple of kvHeads'],
  [-11]: [RangeError, 'scale must be finite'],
  [-12]: [RangeError, 'a token or target is not in [0, vocab)'],
  [-13]: [Error, 'backward needs a forward pass with targets first'],
  [-14]: [RangeError, 'a scalar argument is out of range'],
};

/** Throws the error for a negative status returned by `what`; returns quietly on 0. */
export function checkStatus(status, what) {
  if (status === 0) return;
  const [ErrorClass, message] = STATUS[status] ?? [Error, `unexpected status ${status}`];
  throw new ErrorClass(`${what}: ${message}`);
}
