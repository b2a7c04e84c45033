// native.test.js: runs the native binaries `./build.sh native` builds from c/ and tests/:
// the C unit tests under ASan + UBSan + LeakSanitizer, the same tests under valgrind, and the
// libFuzzer harnesses for a bounded time (ROPE_FUZZ_SECONDS each, default 45: 90 s for the two).
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// The last lines of a (possibly long) output, enough to see what failed.
function tail(text, lines = 60) {
  return (text ?? '').split('\n').slice(-lines).join('\n');
}

// Runs a command from the repository root; fails with its output if it cannot start, times out
// or exits non-zero.
function run(command, args, timeoutSeconds) {
  const result = spawnSync(command, args, {
    cwd: root,
    encoding: 'utf8',
    timeout: timeoutSeconds * 1000,
    maxBuffer: 256 * 1024 * 1024,
  });
  const shown = `$ ${command} ${args.join(' ')}\n--- stdout ---\n${tail(result.stdout)}\n--- stderr ---\n${tail(result.stderr)}`;
  if (result.error) {
    const why = result.error.code === 'ENOENT'
      ? `${command} not found (./build.sh native builds build/*; valgrind must be installed)`
      : result.error.message;
    assert.fail(`${why}\n${shown}`);
  }
  assert.equal(result.status, 0, `exit status ${result.status} (signal ${result.signal})\n${shown}`);
  return result;
}

// "N passed, 0 failed" as the final line, with enough tests to mean something.
function assertAllPassed(stdout) {
  const match = /^(\d+) passed, 0 failed$/m.exec(stdout);
  assert.ok(match, `no "N passed, 0 failed" line in:\n${tail(stdout)}`);
  assert.ok(Number(match[1]) > 20, `only ${match[1]} checks ran`);
}

// The C modules with unit tests of their own: tests/native/test_NAME.c.
const MODULES = ['rope', 'gemm', 'attention', 'mha', 'scores', 'model', 'train_ops', 'kv_cache'];

for (const name of MODULES) {
  test(`C unit tests of ${name} pass under ASan, UBSan and LeakSanitizer`, () => {
    const result = run(`build/test_${name}`, [], 300);
    assertAllPassed(result.stdout);
  });

  test(`C unit tests of ${name} are clean under valgrind (no invalid access, no definite leak)`, () => {
    const result = run('valgrind', [
      '--error-exitcode=1', '--leak-check=full', '--errors-for-leak-kinds=definite', `build/test_${name}_plain`,
    ], 900);
    assertAllPassed(result.stdout);
  });
}

// The libFuzzer harnesses, tests/fuzz/fuzz_NAME.c: their seeds, and where the new inputs they
// find accumulate across runs.
const FUZZERS = [
  { name: 'rope', seeds: join('tests', 'fuzz', 'corpus'), corpus: join('build', 'fuzz-corpus') },
  { name: 'attention', seeds: join('tests', 'fuzz', 'corpus_attention'), corpus: join('build', 'fuzz-corpus-attention') },
];

for (const { name, seeds, corpus } of FUZZERS) {
  test(`libFuzzer harness fuzz_${name} finds nothing in a bounded run`, () => {
    const seconds = Number(process.env.ROPE_FUZZ_SECONDS ?? 45);
    assert.ok(Number.isInteger(seconds) && seconds > 0, `ROPE_FUZZ_SECONDS must be a positive integer, got ${process.env.ROPE_FUZZ_SECONDS}`);
    mkdirSync(join(root, corpus), { recursive: true });
    run(`build/fuzz_${name}`, [
      `-max_total_time=${seconds}`,
      '-timeout=30',                                       // one input running 30 s is a hang
      '-rss_limit_mb=2048',
      `-artifact_prefix=${join('build', `fuzz-${name}-`)}`,  // a crashing input lands in build/, not the cwd
      '-print_final_stats=1',
      corpus,
      seeds,
    ], seconds + 300);
  });
}
